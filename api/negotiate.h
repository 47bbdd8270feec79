/* negotiate.h - HTTP content negotiation for api/: which representation an
 * Accept header asks for (RFC 9110 section 12.5.1, q-values included).
 *
 * Thread-safety: pure functions of their arguments; reentrant. */
#ifndef API_NEGOTIATE_H
#define API_NEGOTIATE_H

#include <stdbool.h>

#include "api.h"

/* Chooses JSON or Markdown for an Accept header (NULL or "" = no header).
 * Each representation gets the q of the most specific media range matching
 * it (exact type, then "type/STAR", then "STAR/STAR", where STAR is the
 * asterisk wildcard); the higher q wins; on equal q an exact match beats a
 * wildcard, then the one listed first wins, then JSON. Media-type parameters
 * other than q are ignored; a malformed q counts as 1; q=0 means "not
 * acceptable".
 * *acceptable (may be NULL) is set false when neither representation has a
 * q above 0 (e.g. "Accept: image/png"): the service then still answers JSON,
 * as RFC 9110 allows, instead of a 406 (see openapi.yaml). */
enum api_format api__negotiate(const char *accept, bool *acceptable);

/* The representation a request asks for: ?format= when present and valid
 * ("json", "markdown" or "md"), else the Accept header. *valid (may be NULL)
 * is false when ?format= has another value (then JSON is returned). */
enum api_format api__request_format(const struct api_request *req, bool *valid);

#endif
