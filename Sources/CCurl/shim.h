// Typed wrappers over libcurl's variadic setopt/getinfo calls, which Swift cannot call.
#ifndef KONTEXT_CCURL_SHIM_H
#define KONTEXT_CCURL_SHIM_H
#include <curl/curl.h>

typedef size_t (*kx_curl_write_fn)(char *data, size_t size, size_t count, void *context);

static inline CURLcode kx_curl_set_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode kx_curl_set_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode kx_curl_set_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode kx_curl_set_write_function(CURL *h, CURLoption o, kx_curl_write_fn f) { return curl_easy_setopt(h, o, f); }
static inline CURLcode kx_curl_get_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode kx_curl_get_pointer(CURL *h, CURLINFO i, void **v) { return curl_easy_getinfo(h, i, v); }
#endif
