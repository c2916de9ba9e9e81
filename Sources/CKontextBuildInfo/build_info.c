#include "CKontextBuildInfo.h"

#ifndef KONTEXT_VERSION
#define KONTEXT_VERSION "0.0.0+dev"
#endif
#ifndef KONTEXT_COMMIT
#define KONTEXT_COMMIT "unknown"
#endif

const char *kontext_build_version(void) { return KONTEXT_VERSION; }
const char *kontext_build_commit(void) { return KONTEXT_COMMIT; }
