/* The floor for `kontext hook`: a program that does nothing but read its stdin to the end,
 * as a hook must. bench/hook-roundtrip compiles it twice (static, and dynamically linked
 * against libc only) and times it exactly like the real hook: what spawning any process
 * that reads a hook's input costs on this machine. */
#include <unistd.h>

int main(void) {
    char buffer[65536];
    for (;;) {
        ssize_t n = read(0, buffer, sizeof buffer);
        if (n == 0) return 0;
        if (n < 0) return 1;
    }
}
