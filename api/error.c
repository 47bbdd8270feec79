/* error.c - answers' bodies and the errors every handler answers with: the
 * one mapping of project errors to HTTP statuses, {"error":{"code","message"}}
 * bodies, and their plain-text form for a request that asked for Markdown.
 * Handlers call these; these call no handler. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_int.h"

/* Every project error maps to exactly one HTTP status here. */
static const struct {
    int code;
    int status;
} status_table[] = {
    {IM_EINVAL, 400},    {IM_ENOTFOUND, 404}, {IM_EUNAUTH, 502},  {IM_EPROTO, 502},
    {IM_EDIGEST, 502},   {IM_ETOOBIG, 502},   {IM_ETIMEOUT, 504}, {IM_ERATELIMIT, 503},
    {IM_EPOLICY, 403},   {IM_ESTORE, 500},    {IM_ENOMEM, 500},   {IM_EUPSTREAM, 502},
    {IM_EINTERNAL, 500}, {IM_EBUSY, 503},     {IM_EDBDOWN, 503},
};

int api__status_for(int code)
{
    for (size_t i = 0; i < sizeof status_table / sizeof status_table[0]; i++)
        if (status_table[i].code == code)
            return status_table[i].status;
    return 500;
}

void api__drop_body(struct api_response *resp)
{
    if (resp->file_body)
        close(resp->file_fd);
    resp->file_body = false;
    if (resp->shared)
        api_shared_release(resp->shared);
    else
        free(resp->body);
    resp->shared = NULL;
    resp->body = NULL;
    resp->len = 0;
}

void api_response_free(struct api_response *resp)
{
    if (!resp)
        return;
    api__drop_body(resp);
    free(resp->location);
    resp->location = NULL;
}

/* resp answers status with the malloc'd body (len bytes), which it now owns. */
static void set_owned(struct api_response *resp, int status, const char *content_type,
                      char *body, size_t len)
{
    api__drop_body(resp);
    resp->status = status;
    resp->content_type = content_type;
    resp->body = body;
    resp->len = len;
}

/* resp's body becomes a copy of text, and a newline after it when line. */
static int set_text(struct api_response *resp, int status, const char *content_type,
                    const char *text, bool line)
{
    size_t len = strlen(text);
    char *copy = malloc(len + 2);
    if (!copy)
        return IM_ENOMEM;
    memcpy(copy, text, len);
    if (line)
        copy[len++] = '\n';
    copy[len] = '\0';
    set_owned(resp, status, content_type, copy, len);
    return 0;
}

int api__set_body(struct api_response *resp, int status, const char *content_type,
                  const char *text)
{
    return set_text(resp, status, content_type, text, false);
}

int api__set_line(struct api_response *resp, int status, const char *content_type,
                  const char *text)
{
    return set_text(resp, status, content_type, text, true);
}

int api__set_json(struct api_response *resp, int status, struct im_jw *w, bool line)
{
    if (line)
        im_buf_putn(&w->b, "\n", 1);
    char *text = NULL;
    size_t len = 0;
    int rc = im_buf_finish(&w->b, &text, &len);
    if (!rc)
        set_owned(resp, status, API_CT_JSON, text, len);
    return rc;
}

/* {"error":{"code":"...","message":"..."}} with the message JSON-escaped. */
int api__error(struct api_response *resp, int status, const char *code,
               const char *message)
{
    /* Messages quote user input and upstream text, possibly cut mid-character:
     * make them valid UTF-8 so the error itself cannot fail. */
    char safe[2 * IM_ERRMSG_MAX];
    im_strlcpy(safe, message, sizeof safe);
    im_utf8_sanitize(safe);
    struct im_jw w = {.b = {.max = API_JSON_MAX}};
    im_jw_open(&w, '{');
    im_jw_key(&w, "error");
    im_jw_open(&w, '{');
    im_jw_kstr(&w, "code", code);
    im_jw_kstr(&w, "message", safe);
    im_jw_close(&w, '}');
    im_jw_close(&w, '}');
    /* errors end with a newline like every other body, for curl users */
    return api__set_json(resp, status, &w, true);
}

int api__error_code(struct api_response *resp, int code, const char *message)
{
    return api__error(resp, api__status_for(code), im_errname(code), message);
}

/* Rewrites a JSON error answer as its message in plain text, for a request
 * that asked for Markdown: a Markdown reader gets a line, not JSON. */
static int error_as_text(struct api_response *resp)
{
    json_error_t jerr;
    json_t *doc = json_loadb(resp->body, resp->len, 0, &jerr);
    const char *msg =
        json_string_value(json_object_get(json_object_get(doc, "error"), "message"));
    int rc = msg ? api__set_line(resp, resp->status, API_CT_TEXT, msg) : 0;
    json_decref(doc);
    return rc;
}

int api__finish_error(const struct api_request *req, struct api_response *resp)
{
    if (resp->status < 400 || !resp->body || !resp->content_type ||
        strcmp(resp->content_type, API_CT_JSON) != 0)
        return 0;
    if (api__request_format(req, NULL) != API_FORMAT_MARKDOWN)
        return 0;
    return error_as_text(resp);
}

int api_error_response(const struct api_request *req, struct api_response *resp,
                       int status, const char *code, const char *message)
{
    int rc = api__error(resp, status, code, message);
    return rc != 0 ? rc : api__finish_error(req, resp);
}
