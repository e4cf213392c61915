#define _GNU_SOURCE /* pipe2, posix_spawn_file_actions_addclosefrom_np */
#include "csupport.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <malloc.h>
#endif

static volatile sig_atomic_t stop_signal = 0;

static void on_stop(int sig) { stop_signal = sig; }

void csupport_line_buffer_stdio(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    setvbuf(stderr, NULL, _IONBF, 0);
}

int csupport_isatty(int fd) { return isatty(fd); }

int csupport_install_stop_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0) return -1;
    if (sigaction(SIGTERM, &sa, NULL) != 0) return -1;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int csupport_stop_requested(void) { return stop_signal; }

void csupport_clear_stop(void) { stop_signal = 0; }

int csupport_keep_freed_memory(void) {
#ifdef __GLIBC__
    /* Activations come and go every layer; by default glibc maps each large one afresh and the
       kernel zero-fills every page on first touch (unet-paper trained 20% slower for it). Serve
       every allocation from the heap and do not hand freed memory back after each step: the
       process keeps its peak (about 10% more resident memory for unet-paper). */
    if (!mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024)) return -1; /* also stops glibc moving it */
    if (!mallopt(M_MMAP_MAX, 0)) return -1;
    if (!mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024)) return -1;
    return 0;
#else
    return -1;
#endif
}

long long csupport_peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return (long long)ru.ru_maxrss * 1024LL;
}

int csupport_die_with_parent(void) {
#ifdef __linux__
    pid_t parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return -1;
    if (getppid() != parent || parent == 1) return -1; /* parent died before prctl */
#endif
    return 0;
}

int csupport_spawn(const char *path, char *const argv[], char *const envp[], int stderr_fd, int *stdout_fd, int *pid) {
    int fds[2] = {-1, -1};
    if (stdout_fd && pipe2(fds, O_CLOEXEC) != 0) return errno;
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, stdout_fd ? fds[1] : stderr_fd, 1);
    posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
#endif
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t child = 0;
    int rc = posix_spawn(&child, path, &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (stdout_fd) close(fds[1]);
    if (rc != 0) {
        if (stdout_fd) close(fds[0]);
        return rc;
    }
    if (stdout_fd) *stdout_fd = fds[0];
    *pid = (int)child;
    return 0;
}

int csupport_try_wait_child(int pid, int *code, int *sig) {
    int status = 0;
    pid_t r;
    while ((r = waitpid((pid_t)pid, &status, WNOHANG)) < 0) {
        if (errno != EINTR) return -1;
    }
    if (r == 0) return 0;
    *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    *sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return 1;
}

int csupport_wait_child(int pid, int *code, int *sig) {
    int status = 0;
    while (waitpid((pid_t)pid, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    *sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return 0;
}
