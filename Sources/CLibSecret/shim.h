// Non-variadic wrappers over libsecret's password API (Swift cannot call C variadics).
// Every item kontext stores carries two attributes: "kontext-kind" (what the secret is
// for, e.g. "provider") and "kontext-key" (e.g. "github" or "postgres/app-ro").
#ifndef KONTEXT_CLIBSECRET_SHIM_H
#define KONTEXT_CLIBSECRET_SHIM_H
#include <libsecret/secret.h>
#include <string.h>

static inline const SecretSchema *kx_secret_schema(void) {
    static const SecretSchema schema = {
        "dev.kontext.Credential", SECRET_SCHEMA_NONE,
        {
            { "kontext-kind", SECRET_SCHEMA_ATTRIBUTE_STRING },
            { "kontext-key", SECRET_SCHEMA_ATTRIBUTE_STRING },
            { NULL, 0 },
        }
    };
    return &schema;
}

// Moves a GError's message into *message (g_free it) and frees the error.
static inline void kx_take_error(GError *error, char **message) {
    if (error == NULL) return;
    if (message != NULL) *message = g_strdup(error->message);
    g_error_free(error);
}

static inline int kx_secret_store(const char *kind, const char *key, const char *label,
                                  const char *secret, char **message) {
    GError *error = NULL;
    gboolean ok = secret_password_store_sync(kx_secret_schema(), SECRET_COLLECTION_DEFAULT,
                                             label, secret, NULL, &error,
                                             "kontext-kind", kind, "kontext-key", key, NULL);
    kx_take_error(error, message);
    return ok ? 0 : -1;
}

// Returns 1 and sets *secret (free with kx_secret_free) when found, 0 when absent, -1 on error.
static inline int kx_secret_lookup(const char *kind, const char *key, char **secret,
                                   char **message) {
    GError *error = NULL;
    gchar *value = secret_password_lookup_sync(kx_secret_schema(), NULL, &error,
                                               "kontext-kind", kind, "kontext-key", key, NULL);
    if (error != NULL) { kx_take_error(error, message); return -1; }
    if (value == NULL) return 0;
    *secret = value;
    return 1;
}

static inline void kx_secret_free(char *secret) { secret_password_free(secret); }

// Returns 1 when something was removed, 0 when nothing matched, -1 on error.
static inline int kx_secret_clear(const char *kind, const char *key, char **message) {
    GError *error = NULL;
    gboolean removed = secret_password_clear_sync(kx_secret_schema(), NULL, &error,
                                                  "kontext-kind", kind, "kontext-key", key, NULL);
    if (error != NULL) { kx_take_error(error, message); return -1; }
    return removed ? 1 : 0;
}

// Lists the keys of one kind as a newline-separated string in *keys (g_free it).
static inline int kx_secret_list(const char *kind, char **keys, char **message) {
    GError *error = NULL;
    GList *items = secret_password_search_sync(kx_secret_schema(), SECRET_SEARCH_ALL, NULL,
                                               &error, "kontext-kind", kind, NULL);
    if (error != NULL) { kx_take_error(error, message); return -1; }
    GString *out = g_string_new(NULL);
    for (GList *l = items; l != NULL; l = l->next) {
        GHashTable *attributes = secret_retrievable_get_attributes(SECRET_RETRIEVABLE(l->data));
        const char *key = attributes ? g_hash_table_lookup(attributes, "kontext-key") : NULL;
        if (key != NULL) { g_string_append(out, key); g_string_append_c(out, '\n'); }
        if (attributes) g_hash_table_unref(attributes);
    }
    g_list_free_full(items, g_object_unref);
    *keys = g_string_free(out, FALSE);
    return 0;
}

static inline void kx_g_free(void *p) { g_free(p); }

#endif
