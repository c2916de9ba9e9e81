/* bench/proxy-driver: the client of bench/proxy, on libcurl (HTTP/1.1, keep-alive).
 *
 *   proxy-driver latency N URL      N sequential GETs on one connection (after 50 warm-up
 *                                   ones): RESULT what=latency p50_us= p99_us= n=
 *   proxy-driver rate SECONDS C URL C connections, each sending its next GET as soon as the
 *                                   last answered, for SECONDS: RESULT what=rate conns= rps=
 *   proxy-driver bytes URL          one GET, the body discarded: RESULT what=bytes bytes=
 *                                   seconds= mib_s= and the RSS of the parent process (the
 *                                   kontext session when run under `kontext run`) before and
 *                                   the largest seen during the transfer: rss_kib= peak_kib=
 *
 * Every request carries `Authorization: Bearer $BENCH_TOKEN`; any status but 200 fails the
 * run (the server answers 403 unless the credential arrived, so a swap that did not happen
 * is an error, not a fast figure). Environment: BENCH_PROXY (a proxy URL; else direct, with
 * no proxy variable honoured), BENCH_CAFILE (else CURL_CA_BUNDLE), BENCH_LABEL (printed).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *label = "run";

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what, const char *detail) {
    fprintf(stderr, "proxy-driver (%s): %s: %s\n", label, what, detail);
    exit(1);
}

static long status_kib(const char *field);
/* The parent's largest VmRSS seen during a `bytes` transfer, sampled every 4 MiB received:
   its VmHWM would be start-up's peak, which the session no longer holds once its child runs. */
static long peak_rss_kib;
static curl_off_t next_sample;

static size_t discard(char *data, size_t size, size_t count, void *total) {
    (void)data;
    *(curl_off_t *)total += size * count;
    if (*(curl_off_t *)total >= next_sample) {
        long rss = status_kib("VmRSS");
        if (rss > peak_rss_kib) peak_rss_kib = rss;
        next_sample = *(curl_off_t *)total + (4 << 20);
    }
    return size * count;
}

static struct curl_slist *headers;
static curl_off_t received;

static CURL *handle(const char *url) {
    CURL *curl = curl_easy_init();
    if (!curl) die("curl_easy_init", "failed");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &received);
    curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
    const char *proxy = getenv("BENCH_PROXY");
    curl_easy_setopt(curl, CURLOPT_PROXY, proxy && *proxy ? proxy : "");
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "");
    const char *ca = getenv("BENCH_CAFILE");
    if (!ca || !*ca) ca = getenv("CURL_CA_BUNDLE");
    if (ca && *ca) curl_easy_setopt(curl, CURLOPT_CAINFO, ca);
    return curl;
}

static void check(CURL *curl, CURLcode code) {
    if (code != CURLE_OK) die("request failed", curl_easy_strerror(code));
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        char text[32];
        snprintf(text, sizeof text, "HTTP %ld", status);
        die("the server did not answer 200 (was the credential swapped in?)", text);
    }
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long status_kib(const char *field) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)getppid());
    FILE *file = fopen(path, "r");
    long value = -1;
    if (!file) return value;
    size_t length = strlen(field);
    while (fgets(line, sizeof line, file))
        if (strncmp(line, field, length) == 0 && line[length] == ':') value = atol(line + length + 1);
    fclose(file);
    return value;
}

int main(int argc, char **argv) {
    if (argc < 3) die("usage", "latency N URL | rate SECONDS CONNECTIONS URL | bytes URL");
    if (getenv("BENCH_LABEL")) label = getenv("BENCH_LABEL");
    const char *token = getenv("BENCH_TOKEN");
    if (!token || !*token) die("BENCH_TOKEN", "not set");
    char *authorization = malloc(strlen(token) + 32);
    sprintf(authorization, "Authorization: Bearer %s", token);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    headers = curl_slist_append(NULL, authorization);

    if (strcmp(argv[1], "latency") == 0 && argc == 4) {
        int n = atoi(argv[2]);
        CURL *curl = handle(argv[3]);
        for (int i = 0; i < 50; i++) check(curl, curl_easy_perform(curl));
        double *times = calloc(n, sizeof *times);
        for (int i = 0; i < n; i++) {
            double start = now();
            check(curl, curl_easy_perform(curl));
            times[i] = now() - start;
        }
        qsort(times, n, sizeof *times, compare);
        printf("RESULT label=%s what=latency p50_us=%.0f p99_us=%.0f n=%d\n", label, times[n / 2] * 1e6,
               times[(int)(n * 0.99)] * 1e6, n);
    } else if (strcmp(argv[1], "rate") == 0 && argc == 5) {
        double seconds = atof(argv[2]);
        int connections = atoi(argv[3]);
        CURLM *multi = curl_multi_init();
        curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)connections * 2);
        for (int i = 0; i < connections; i++) curl_multi_add_handle(multi, handle(argv[4]));
        long done = 0, counted = 0;
        double start = now(), warm = start + 1, end = warm + seconds;
        int running = connections;
        while (now() < end) {
            curl_multi_perform(multi, &running);
            CURLMsg *message;
            int left;
            while ((message = curl_multi_info_read(multi, &left))) {
                if (message->msg != CURLMSG_DONE) continue;
                CURL *curl = message->easy_handle;
                check(curl, message->data.result);
                done++;
                if (now() >= warm) counted++;
                curl_multi_remove_handle(multi, curl);
                curl_multi_add_handle(multi, curl);
            }
            curl_multi_poll(multi, NULL, 0, 100, NULL);
        }
        printf("RESULT label=%s what=rate conns=%d rps=%.0f\n", label, connections, counted / seconds);
    } else if (strcmp(argv[1], "bytes") == 0 && argc == 3) {
        /* The session gives back start-up's pages once its child runs: a first small request
           (the body's first 64 KiB) brings the proxy's code back in before the baseline. */
        CURL *warm = handle(argv[2]);
        curl_easy_setopt(warm, CURLOPT_RANGE, "0-65535");
        if (curl_easy_perform(warm) != CURLE_OK) die("warm-up request failed", argv[2]);
        curl_easy_cleanup(warm);
        received = 0;
        long rss = status_kib("VmRSS");
        peak_rss_kib = rss;
        CURL *curl = handle(argv[2]);
        double start = now();
        check(curl, curl_easy_perform(curl));
        double elapsed = now() - start;
        long last = status_kib("VmRSS");
        if (last > peak_rss_kib) peak_rss_kib = last;
        printf("RESULT label=%s what=bytes bytes=%lld seconds=%.3f mib_s=%.0f rss_kib=%ld peak_kib=%ld\n", label,
               (long long)received, elapsed, received / elapsed / 1048576.0, rss, peak_rss_kib);
    } else {
        die("usage", "latency N URL | rate SECONDS CONNECTIONS URL | bytes URL");
    }
    return 0;
}
