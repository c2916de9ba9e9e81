#ifndef CKONTEXTBUILDINFO_H
#define CKONTEXTBUILDINFO_H
/* The release this binary was built as, and its commit: set by scripts/package through
   Package.swift (KONTEXT_VERSION, KONTEXT_COMMIT); a plain `swift build` says "dev". */
const char *kontext_build_version(void);
const char *kontext_build_commit(void);
#endif
