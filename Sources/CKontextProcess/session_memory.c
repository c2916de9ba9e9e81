// A session process runs its whole start-up (argument parsing, login, exchanges, the agent's
// launch) once and then only serves hooks for hours. Once the agent runs, it gives back what
// start-up held: the resident pages of the program's read-only segments (code, constants,
// symbol and relocation tables: clean file pages, so MADV_DONTNEED only drops this process's
// mappings of them and whatever runs later faults its pages back in from the page cache), and
// the heap start-up freed; and it keeps the hook threads to two malloc arenas, not one per
// thread that ever ran.
#define _GNU_SOURCE
#include "CKontextProcess.h"
#ifdef __linux__
#include <elf.h>
#include <link.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

// A program with text relocations has written into a read-only segment: its copy differs
// from the file, and dropping it would undo the relocations.
static int has_text_relocations(const struct dl_phdr_info *info) {
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *header = &info->dlpi_phdr[i];
        if (header->p_type != PT_DYNAMIC) continue;
        for (const ElfW(Dyn) *entry = (const ElfW(Dyn) *)(info->dlpi_addr + header->p_vaddr);
             entry->d_tag != DT_NULL; entry++) {
            if (entry->d_tag == DT_TEXTREL) return 1;
            if (entry->d_tag == DT_FLAGS && (entry->d_un.d_val & DF_TEXTREL)) return 1;
        }
    }
    return 0;
}

static int release_program_pages(struct dl_phdr_info *info, size_t size, void *context) {
    (void)size;
    long *released = context;
    if (has_text_relocations(info)) return 1;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *header = &info->dlpi_phdr[i];
        if (header->p_type != PT_LOAD || (header->p_flags & PF_W)) continue;
        // Whole pages inside the segment only, so no neighbouring writable page is touched.
        uintptr_t start = (info->dlpi_addr + header->p_vaddr + page - 1) & ~(page - 1);
        uintptr_t end = (info->dlpi_addr + header->p_vaddr + header->p_memsz) & ~(page - 1);
        if (end > start && madvise((void *)start, end - start, MADV_DONTNEED) == 0) *released += (long)(end - start);
    }
    return 1;  // the first object is the program itself; the libraries are left alone
}

long kontext_settle_session_memory(void) {
    mallopt(M_ARENA_MAX, 2);
    malloc_trim(0);
    long released = 0;
    dl_iterate_phdr(release_program_pages, &released);
    return released;
}
#else
long kontext_settle_session_memory(void) { return 0; }
#endif
