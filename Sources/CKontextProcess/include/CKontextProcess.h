#ifndef CKONTEXTPROCESS_H
#define CKONTEXTPROCESS_H
/* prctl is variadic, which Swift cannot call; this fixes its arguments. */
int kontext_set_dumpable(int dumpable);
#endif
