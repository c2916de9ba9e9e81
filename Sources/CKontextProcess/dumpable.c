#include "CKontextProcess.h"
#ifdef __linux__
#include <sys/prctl.h>
int kontext_set_dumpable(int dumpable) { return prctl(PR_SET_DUMPABLE, dumpable, 0, 0, 0); }
#else
int kontext_set_dumpable(int dumpable) { (void)dumpable; return 0; }
#endif
