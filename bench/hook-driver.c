/* hook-driver: the timing harness of kontext's benchmarks (bench/README.md).
 *
 *   hook-driver spawn [-n RUNS] [-w WARMUP] [-e EXPECT] [-x CODE] [-s] [-l LABEL] -- PROG ARGS...
 *       Runs PROG RUNS times, one after another, each with a Claude PreToolUse hook JSON
 *       on stdin (a pipe), and times each run with CLOCK_MONOTONIC from just before
 *       posix_spawn to waitpid, after its stdout and stderr reached end of file. Each run
 *       must exit with CODE (default 0) and, with -e, print EXPECT on stdout. With -s the
 *       program's stdout is a CLOCK_MONOTONIC stamp in ns (see `stamp`), and the time from
 *       spawn to that stamp is reported too (e.g. `kontext run -- hook-driver stamp`).
 *   hook-driver ingest [-c CONC[,CONC...]] [-n EVENTS] [-w WARMUP] [-e EXPECT] [-l LABEL] [-p PID]
 *       Sends EVENTS pre-tool hook requests straight to $KONTEXT_SOCKET in kontext's wire
 *       format (Sources/KontextHookWire/HookWire.swift) from CONC threads, one connection
 *       per request as `kontext hook` makes, and reports acknowledged events/s and latency.
 *       Then prints VmHWM/VmRSS of PID (default: the parent, i.e. the `kontext start`
 *       process when run as its --agent-command).
 *   hook-driver rss PID      prints PID's VmHWM and VmRSS
 *   hook-driver stamp        prints CLOCK_MONOTONIC in ns and exits
 *
 * Every figure goes to stdout as one `RESULT key=value ...` line (times in ms) after a
 * human-readable line. Any failed run stops the driver with exit status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *label = "run";

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fprintf(stderr, "hook-driver [%s]: ", label);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    exit(1);
}

/* A realistic PreToolUse input (about 400 bytes), different for every call. */
static int hook_input(char *buffer, size_t size, long index) {
    int n = snprintf(buffer, size,
        "{\"session_id\":\"0b6a3c1e-bench-4f7e-9a51-claude\",\"transcript_path\":"
        "\"/home/dev/.claude/projects/-work-project/0b6a3c1e-bench.jsonl\",\"cwd\":\"/work/project\","
        "\"permission_mode\":\"default\",\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Bash\","
        "\"tool_input\":{\"command\":\"ls -la src/module%ld && git status --short src/module%ld\","
        "\"description\":\"List the files of module %ld and their git status\"},"
        "\"tool_use_id\":\"toolu_01BENCH%012ld\"}",
        index, index, index, index);
    if (n < 0 || (size_t)n >= size) die("hook input does not fit");
    return n;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values. */
static double percentile(const double *sorted, long n, double p) {
    long rank = (long)((p / 100.0) * n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

static void report(const char *what, double *values, long n, const char *extra) {
    qsort(values, (size_t)n, sizeof *values, compare_doubles);
    double sum = 0;
    for (long i = 0; i < n; i++) sum += values[i];
    double p50 = percentile(values, n, 50), p90 = percentile(values, n, 90), p99 = percentile(values, n, 99);
    printf("%-28s n=%-6ld p50 %7.3f ms  p90 %7.3f ms  p99 %7.3f ms  max %7.3f ms  mean %7.3f ms%s%s\n",
           what, n, p50, p90, p99, values[n - 1], sum / n, extra[0] ? "  " : "", extra);
    printf("RESULT label=%s what=%s n=%ld p50=%.3f p90=%.3f p99=%.3f max=%.3f mean=%.3f min=%.3f %s\n",
           label, what, n, p50, p90, p99, values[n - 1], sum / n, values[0], extra);
    fflush(stdout);
}

static long parse_long(const char *text, const char *flag) {
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || *end || value < 0) die("%s needs a non-negative number, got '%s'", flag, text);
    return value;
}

/* ---------------------------------------------------------------- spawn */

struct capture { char *data; size_t length, capacity; };

static void capture_append(struct capture *c, const char *bytes, size_t n) {
    if (c->length + n + 1 > c->capacity) {
        size_t capacity = (c->length + n + 1) * 2;
        if (capacity > (1u << 20)) die("child output larger than 1 MiB");
        c->data = realloc(c->data, capacity);
        if (!c->data) die("out of memory");
        c->capacity = capacity;
    }
    memcpy(c->data + c->length, bytes, n);
    c->length += n;
    c->data[c->length] = 0;
}

/* One timed run: returns its time in ms and the moment (CLOCK_MONOTONIC ns) just before
 * posix_spawn in *started. */
static double spawn_once(char **argv, long index, struct capture *out, struct capture *err, int *status,
                         uint64_t *started) {
    char input[1024];
    int input_length = hook_input(input, sizeof input, index);
    int in[2], o[2], e[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(o, O_CLOEXEC) || pipe2(e, O_CLOEXEC)) die("pipe: %s", strerror(errno));
    /* The input fits the pipe buffer: written and closed before the child starts. */
    if (write(in[1], input, (size_t)input_length) != input_length) die("write to pipe: %s", strerror(errno));
    close(in[1]);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, o[1], 1);
    posix_spawn_file_actions_adddup2(&actions, e[1], 2);
    out->length = err->length = 0;
    if (out->data) out->data[0] = 0;
    if (err->data) err->data[0] = 0;

    uint64_t start = now_ns();
    *started = start;
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(o[1]);
    close(e[1]);
    if (rc != 0) die("cannot spawn %s: %s", argv[0], strerror(rc));

    struct pollfd fds[2] = {{.fd = o[0], .events = POLLIN}, {.fd = e[0], .events = POLLIN}};
    struct capture *captures[2] = {out, err};
    int open_count = 2;
    while (open_count > 0) {
        int ready = poll(fds, 2, 30000);
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            die("run %ld: %s gave no output for 30 s; killed it", index, argv[0]);
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buffer[8192];
            ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_count--;
            } else {
                capture_append(captures[i], buffer, (size_t)n);
            }
        }
    }
    while (waitpid(pid, status, 0) < 0) {
        if (errno != EINTR) die("waitpid: %s", strerror(errno));
    }
    uint64_t end = now_ns();
    return (double)(end - start) / 1e6;
}

static int spawn_main(int argc, char **argv) {
    long runs = 1000, warmup = 20, expected_code = 0;
    const char *expect = NULL;
    int stamped = 0;
    int i = 0;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) { i++; break; }
        if (!strcmp(a, "-s")) { stamped = 1; continue; }
        if (i + 1 >= argc) die("%s needs a value", a);
        if (!strcmp(a, "-n")) runs = parse_long(argv[++i], a);
        else if (!strcmp(a, "-w")) warmup = parse_long(argv[++i], a);
        else if (!strcmp(a, "-x")) expected_code = parse_long(argv[++i], a);
        else if (!strcmp(a, "-e")) expect = argv[++i];
        else if (!strcmp(a, "-l")) label = argv[++i];
        else die("unknown option %s", a);
    }
    if (i >= argc) die("spawn: no program given (after --)");
    if (runs < 1) die("spawn: -n must be at least 1");
    char **program = argv + i;

    double *times = calloc((size_t)runs, sizeof *times);
    double *to_exec = calloc((size_t)runs, sizeof *to_exec);
    if (!times || !to_exec) die("out of memory");
    struct capture out = {0}, err = {0};
    long with_stderr = 0;
    char first_stderr[512] = "";
    for (long r = -warmup; r < runs; r++) {
        int status;
        uint64_t before;
        double ms = spawn_once(program, r + warmup, &out, &err, &status, &before);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != expected_code) {
            die("run %ld of %s: %s %d (expected exit %ld)\nstdout: %s\nstderr: %s", r + warmup, program[0],
                WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                expected_code, out.data ? out.data : "", err.data ? err.data : "");
        }
        if (expect && (!out.data || !strstr(out.data, expect))) {
            die("run %ld of %s: stdout lacks '%s'\nstdout: %s\nstderr: %s", r + warmup, program[0], expect,
                out.data ? out.data : "", err.data ? err.data : "");
        }
        if (err.length > 0) {
            if (with_stderr++ == 0) snprintf(first_stderr, sizeof first_stderr, "%s", err.data);
        }
        if (r < 0) continue;
        times[r] = ms;
        if (stamped) {
            char *end;
            unsigned long long stamp = out.data ? strtoull(out.data, &end, 10) : 0;
            if (!stamp || stamp < before) die("run %ld: no valid stamp on stdout: '%s'", r, out.data ? out.data : "");
            to_exec[r] = (double)(stamp - before) / 1e6;
        }
    }
    char extra[128];
    snprintf(extra, sizeof extra, "acked=%ld stderr_runs=%ld", runs + warmup, with_stderr);
    report("spawn-to-exit", times, runs, extra);
    if (stamped) report("spawn-to-child-exec", to_exec, runs, extra);
    if (with_stderr) {
        size_t n = strlen(first_stderr);
        while (n && first_stderr[n - 1] == '\n') first_stderr[--n] = 0;
        printf("note: %ld of %ld runs wrote to stderr, e.g.: %s\n", with_stderr, runs + warmup, first_stderr);
    }
    return 0;
}

/* ---------------------------------------------------------------- ingest */

static const char *socket_path;
static const char *ingest_expect;
static long ingest_total, ingest_offset;
static long next_index;
static double *latencies;
static volatile int ingest_failed;
static pthread_mutex_t failure_lock = PTHREAD_MUTEX_INITIALIZER;
static char failure[1024];

static void fail_ingest(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void fail_ingest(const char *format, ...) {
    pthread_mutex_lock(&failure_lock);
    if (!ingest_failed) {
        va_list args;
        va_start(args, format);
        vsnprintf(failure, sizeof failure, format, args);
        va_end(args);
        ingest_failed = 1;
    }
    pthread_mutex_unlock(&failure_lock);
}

static int write_all(int fd, const char *bytes, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, bytes, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        bytes += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One hook call over the socket, as `kontext hook` makes it. 0 on success. */
static int one_request(long index, char *answer, size_t answer_size) {
    char payload[1024], request[1200];
    int payload_length = hook_input(payload, sizeof payload, index);
    int header_length = snprintf(request, sizeof request, "KXH1 pre-tool claude - %d\n", payload_length);
    memcpy(request + header_length, payload, (size_t)payload_length);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { fail_ingest("socket: %s", strerror(errno)); return -1; }
    struct timeval timeout = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    snprintf(address.sun_path, sizeof address.sun_path, "%s", socket_path);
    int attempts = 0;
    while (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        /* A full listen backlog answers EAGAIN on Unix sockets: retry briefly, like a busy server. */
        if ((errno == EAGAIN || errno == EINTR) && attempts++ < 1000) { usleep(1000); continue; }
        fail_ingest("connect %s: %s", socket_path, strerror(errno));
        close(fd);
        return -1;
    }
    if (write_all(fd, request, (size_t)(header_length + payload_length))) {
        fail_ingest("write: %s", strerror(errno));
        close(fd);
        return -1;
    }
    shutdown(fd, SHUT_WR);
    size_t length = 0;
    for (;;) {
        ssize_t n = read(fd, answer + length, answer_size - 1 - length);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { fail_ingest("read: %s", strerror(errno)); close(fd); return -1; }
        if (n == 0) break;
        length += (size_t)n;
        if (length >= answer_size - 1) { fail_ingest("answer too long"); close(fd); return -1; }
    }
    close(fd);
    answer[length] = 0;
    int code, out_length, err_length, consumed;
    if (sscanf(answer, "%d %d %d\n%n", &code, &out_length, &err_length, &consumed) != 3 ||
        (size_t)(consumed + out_length + err_length) != length) {
        fail_ingest("malformed answer: '%s'", answer);
        return -1;
    }
    if (code != 0 || err_length != 0) {
        fail_ingest("request %ld answered exit %d: %s", index, code, answer + consumed);
        return -1;
    }
    if (ingest_expect) {
        char saved = answer[consumed + out_length];
        answer[consumed + out_length] = 0;
        int found = strstr(answer + consumed, ingest_expect) != NULL;
        answer[consumed + out_length] = saved;
        if (!found) { fail_ingest("answer lacks '%s': '%s'", ingest_expect, answer + consumed); return -1; }
    }
    return 0;
}

static void *ingest_thread(void *unused) {
    (void)unused;
    char answer[8192];
    while (!ingest_failed) {
        long index = __atomic_fetch_add(&next_index, 1, __ATOMIC_RELAXED);
        if (index >= ingest_total) break;
        uint64_t start = now_ns();
        if (one_request(ingest_offset + index, answer, sizeof answer)) break;
        latencies[index] = (double)(now_ns() - start) / 1e6;
    }
    return NULL;
}

/* CPU time (user + system) PID has used so far, in ms; -1 if unknown. */
static double cpu_ms(long pid) {
    char path[64], buffer[2048];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buffer, 1, sizeof buffer - 1, f);
    fclose(f);
    buffer[n] = 0;
    char *p = strrchr(buffer, ')'); /* fields after the command name, which may hold spaces */
    unsigned long utime, stime;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) return -1;
    return (double)(utime + stime) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

/* Runs `total` requests over `concurrency` threads; returns the wall time in seconds. */
static double ingest_series(long concurrency, long total) {
    ingest_total = total;
    next_index = 0;
    pthread_t *threads = calloc((size_t)concurrency, sizeof *threads);
    if (!threads) die("out of memory");
    uint64_t start = now_ns();
    for (long t = 0; t < concurrency; t++) {
        if (pthread_create(&threads[t], NULL, ingest_thread, NULL)) die("pthread_create failed");
    }
    for (long t = 0; t < concurrency; t++) pthread_join(threads[t], NULL);
    double seconds = (double)(now_ns() - start) / 1e9;
    free(threads);
    if (ingest_failed) die("%s", failure);
    ingest_offset += total;
    return seconds;
}

static int read_status(long pid, long *hwm_kb, long *rss_kb, char *name, size_t name_size) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    *hwm_kb = *rss_kb = -1;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "Name:", 5)) sscanf(line + 5, "%63s", name), (void)name_size;
        sscanf(line, "VmHWM: %ld kB", hwm_kb);
        sscanf(line, "VmRSS: %ld kB", rss_kb);
    }
    fclose(f);
    return 0;
}

static void print_rss(long pid, const char *when) {
    long hwm, rss;
    char name[64] = "?";
    if (read_status(pid, &hwm, &rss, name, sizeof name)) die("cannot read /proc/%ld/status", pid);
    printf("RSS of pid %ld (%s) %s: VmHWM %.1f MB, VmRSS %.1f MB\n", pid, name, when, hwm / 1024.0, rss / 1024.0);
    printf("RESULT label=%s what=rss pid=%ld name=%s when=%s vmhwm_kb=%ld vmrss_kb=%ld\n", label, pid, name, when, hwm, rss);
    fflush(stdout);
}

static int ingest_main(int argc, char **argv) {
    long total = 20000, warmup = 500, pid = (long)getppid();
    const char *concurrency_list = "16";
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) die("%s needs a value", a);
        if (!strcmp(a, "-n")) total = parse_long(argv[++i], a);
        else if (!strcmp(a, "-w")) warmup = parse_long(argv[++i], a);
        else if (!strcmp(a, "-c")) concurrency_list = argv[++i];
        else if (!strcmp(a, "-e")) ingest_expect = argv[++i];
        else if (!strcmp(a, "-l")) label = argv[++i];
        else if (!strcmp(a, "-p")) pid = parse_long(argv[++i], a);
        else die("unknown option %s", a);
    }
    socket_path = getenv("KONTEXT_SOCKET");
    if (!socket_path || !*socket_path) die("KONTEXT_SOCKET is not set: run me under `kontext start --agent-command`");
    if (strlen(socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) die("socket path too long");
    if (total < 1) die("-n must be at least 1");
    latencies = calloc((size_t)(total > warmup ? total : warmup) + 1, sizeof *latencies);
    if (!latencies) die("out of memory");
    signal(SIGPIPE, SIG_IGN);

    usleep(500000);  /* the session process gives back start-up's pages once the agent runs */
    print_rss(pid, "before");
    /* The peak so far is start-up's (before the agent ran); the figure wanted is the sidecar's
       while it ingests, so the kernel's high-water mark starts again here (needs the right to
       write the session process's clear_refs: root, as it is not dumpable). */
    char clear_refs[64];
    snprintf(clear_refs, sizeof clear_refs, "/proc/%ld/clear_refs", pid);
    FILE *reset = fopen(clear_refs, "w");
    int peak_reset = reset && fputs("5", reset) >= 0;
    if (reset && fclose(reset) != 0) peak_reset = 0;
    printf("RESULT label=%s what=peak-reset reset=%d\n", label, peak_reset);
    long acked = 0;
    if (warmup > 0) {
        ingest_series(4, warmup);
        acked += warmup;
    }
    char *list = strdup(concurrency_list);
    for (char *item = strtok(list, ","); item; item = strtok(NULL, ",")) {
        long concurrency = parse_long(item, "-c");
        if (concurrency < 1 || concurrency > 1024) die("-c must be 1..1024");
        double cpu_before = cpu_ms(pid);
        double seconds = ingest_series(concurrency, total);
        double cpu = cpu_ms(pid) - cpu_before;
        acked += total;
        double rate = (double)total / seconds;
        char what[64], extra[200];
        snprintf(what, sizeof what, "ingest-c%ld", concurrency);
        snprintf(extra, sizeof extra, "concurrency=%ld seconds=%.3f events_per_s=%.0f server_cpu_us_per_event=%.0f",
                 concurrency, seconds, rate, cpu_before < 0 ? -1.0 : cpu * 1000.0 / (double)total);
        printf("%ld concurrent connections: %ld events in %.3f s = %.0f events/s durable; "
               "session process CPU %.0f us/event (%.0f%% of one core)\n",
               concurrency, total, seconds, rate, cpu * 1000.0 / (double)total, cpu / 10.0 / seconds);
        report(what, latencies, total, extra);
    }
    free(list);
    print_rss(pid, "after");
    const char *session = getenv("KONTEXT_SESSION_ID");
    printf("RESULT label=%s what=acked acked=%ld session=%s\n", label, acked, session ? session : "-");
    return 0;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "stamp")) {
        printf("%llu\n", (unsigned long long)now_ns());
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "spawn")) {
        signal(SIGPIPE, SIG_IGN);
        int status = spawn_main(argc - 2, argv + 2);
        const char *session = getenv("KONTEXT_SESSION_ID");
        if (session) printf("RESULT label=%s what=session session=%s\n", label, session);
        return status;
    }
    if (argc >= 2 && !strcmp(argv[1], "ingest")) return ingest_main(argc - 2, argv + 2);
    if (argc == 3 && !strcmp(argv[1], "rss")) {
        print_rss(parse_long(argv[2], "rss"), "now");
        return 0;
    }
    fprintf(stderr, "usage: hook-driver spawn|ingest|rss PID|stamp ... (see the comment atop bench/hook-driver.c)\n");
    return 2;
}
