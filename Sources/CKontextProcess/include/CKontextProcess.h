#ifndef CKONTEXTPROCESS_H
#define CKONTEXTPROCESS_H
/* prctl is variadic, which Swift cannot call; these fix its arguments. */
int kontext_set_dumpable(int dumpable);
int kontext_get_dumpable(void);
#endif
