#ifndef CSUPPORT_H
#define CSUPPORT_H
/* Tiny process-level helpers that Swift 6 cannot express safely (global C state). */

/* Make stdout and stderr line-buffered so a killed process does not lose its last log lines. */
void csupport_line_buffer_stdio(void);

/* 1 when the file descriptor is a terminal. */
int csupport_isatty(int fd);

/* Install handlers for SIGINT and SIGTERM that only set a flag; returns 0 on success. */
int csupport_install_stop_handlers(void);

/* The signal number that asked us to stop (0 when none). Async-signal-safe flag. */
int csupport_stop_requested(void);

/* Clears the stop flag (tests). */
void csupport_clear_stop(void);

/* Peak resident set size of this process in bytes (getrusage). */
/* Tune glibc malloc for the engine's large, short-lived buffers (0 on success). */
int csupport_keep_freed_memory(void);

long long csupport_peak_rss_bytes(void);

/* Linux: deliver SIGKILL to this process when its parent dies (a worker's job child must not
   outlive a SIGKILLed worker). Returns 0 on success, -1 if the parent is already gone. */
int csupport_die_with_parent(void);

/* Start PATH with ARGV and ENVP (NULL-terminated) for a job: stdin from /dev/null, stdout into a new
   pipe (its read end, close-on-exec, is stored in *stdout_fd; with STDOUT_FD NULL, stdout goes to
   STDERR_FD too), stderr to STDERR_FD, every other
   descriptor closed, default signal dispositions, an empty signal mask. Returns 0 with the child's
   pid in *pid (reap it with waitpid), or an errno value. */
int csupport_spawn(const char *path, char *const argv[], char *const envp[], int stderr_fd, int *stdout_fd, int *pid);

/* waitpid(pid, 0) retried on EINTR: 0 with the exit code in *code (or -1) and the ending signal in
   *sig (or 0); -1 when waitpid fails. */
int csupport_wait_child(int pid, int *code, int *sig);

/* waitpid(pid, WNOHANG): 1 with *code and *sig as above when the child has exited (it is reaped),
   0 while it runs, -1 when waitpid fails. */
int csupport_try_wait_child(int pid, int *code, int *sig);
#endif
