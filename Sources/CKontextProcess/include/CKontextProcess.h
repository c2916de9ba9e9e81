#ifndef CKONTEXTPROCESS_H
#define CKONTEXTPROCESS_H
/* prctl is variadic, which Swift cannot call; this fixes its arguments. */
int kontext_set_dumpable(int dumpable);
/* Gives back what a session's start-up held (session_memory.c): returns the bytes of the
   program's read-only segments whose pages were released. */
long kontext_settle_session_memory(void);
#endif
