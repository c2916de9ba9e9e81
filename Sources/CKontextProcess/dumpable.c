#include "CKontextProcess.h"
#ifdef __linux__
#include <sys/prctl.h>
int kontext_set_dumpable(int dumpable) { return prctl(PR_SET_DUMPABLE, dumpable, 0, 0, 0); }
int kontext_get_dumpable(void) { return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0); }
#else
int kontext_set_dumpable(int dumpable) { (void)dumpable; return 0; }
int kontext_get_dumpable(void) { return -1; }
#endif
