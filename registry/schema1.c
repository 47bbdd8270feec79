/* schema1.c - legacy Docker schema1 manifests: the payload a signed one
 * (application/vnd.docker.distribution.manifest.v1+prettyjws, a libtrust
 * JWS) is identified by. Per the schema1 spec, a signed manifest's digest is
 * over the manifest without its "signatures": the first formatLength bytes
 * of the body followed by the base64url-decoded formatTail, both read from
 * each signature's protected header (all signatures must agree). Signatures
 * are not verified: Docker stopped trusting them long ago, and the digest is
 * what pins the content. */
#include "registry_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* base64url (RFC 4648 section 5, no padding) into a malloc'ed buffer. */
static char *b64url_decode(const char *in, size_t *outlen)
{
    size_t l = strlen(in);
    char *std = malloc(l + 1), *out = malloc(l + 1);
    long n = -1;
    if (std && out) {
        for (size_t i = 0; i <= l; i++)
            std[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
        n = reg__base64_decode(std, out, l + 1);
    }
    free(std);
    if (n < 0) {
        free(out);
        return NULL;
    }
    *outlen = (size_t)n;
    return out;
}

/* formatLength and formatTail of one signature's protected header. */
static int protected_header(json_t *sig, long long *flen, char **tail, size_t *tlen)
{
    size_t hl = 0;
    json_error_t jerr;
    const char *p = json_string_value(json_object_get(sig, "protected"));
    char *hdr = p ? b64url_decode(p, &hl) : NULL;
    json_t *h = hdr ? json_loadb(hdr, hl, 0, &jerr) : NULL;
    json_t *fl = json_object_get(h, "formatLength");
    const char *ft = json_string_value(json_object_get(h, "formatTail"));
    int rc = -1;
    *tail = NULL;
    if (json_is_integer(fl) && ft) {
        *flen = (long long)json_integer_value(fl);
        *tail = b64url_decode(ft, tlen);
        rc = *tail ? 0 : -1;
    }
    json_decref(h);
    free(hdr);
    return rc;
}

int reg__schema1_payload(const unsigned char *body, size_t len, unsigned char **payload,
                         size_t *plen, struct im_error *err)
{
    json_error_t jerr;
    char *tail = NULL, *t2 = NULL;
    size_t tlen = 0, t2len = 0, i;
    long long flen = -1, f2 = -1;
    json_t *sig;
    int rc = 0;
    *payload = NULL;
    *plen = 0;
    json_t *root = json_loadb((const char *)body, len, 0, &jerr);
    json_t *sigs = json_object_get(root, "signatures");
    if (json_integer_value(json_object_get(root, "schemaVersion")) != 1 ||
        !json_is_array(sigs) || json_array_size(sigs) == 0)
        goto out; /* not a signed schema1 manifest: hashed as it is */
    json_array_foreach(sigs, i, sig)
    {
        int bad = i == 0 ? protected_header(sig, &flen, &tail, &tlen)
                         : protected_header(sig, &f2, &t2, &t2len);
        if (!bad && i > 0 && (f2 != flen || t2len != tlen || memcmp(t2, tail, tlen) != 0))
            bad = 1;
        free(t2);
        t2 = NULL;
        if (bad) {
            rc = im_seterr(err, IM_EPROTO,
                           "signed schema1 manifest: signature %zu has no usable "
                           "formatLength/formatTail, or they disagree",
                           i);
            goto out;
        }
    }
    if (flen < 0 || (unsigned long long)flen > len) {
        rc = im_seterr(err, IM_EPROTO,
                       "signed schema1 manifest: formatLength %lld is "
                       "outside its %zu bytes",
                       flen, len);
        goto out;
    }
    *payload = malloc((size_t)flen + tlen + 1);
    if (!*payload) {
        rc = im_seterr(err, IM_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(*payload, body, (size_t)flen);
    memcpy(*payload + flen, tail, tlen);
    *plen = (size_t)flen + tlen;
out:
    free(tail);
    json_decref(root);
    return rc;
}
