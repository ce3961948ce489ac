/* The pod sandbox process of a test node: it holds the pod's namespaces while the pod lives, so it only
   waits. As PID 1 of the pod it reaps orphaned children, and it exits 0 on SIGTERM or SIGINT (the runtime
   stops a sandbox with SIGTERM). Linked statically: the image holds this file and nothing else. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void request_stop(int signal_number) {
  (void)signal_number;
  stop_requested = 1;
}

static void reap_children(int signal_number) {
  (void)signal_number;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

static int on(int signal_number, void (*handler)(int), int flags) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = handler;
  action.sa_flags = flags;
  sigemptyset(&action.sa_mask);
  return sigaction(signal_number, &action, NULL);
}

int main(void) {
  if (on(SIGTERM, request_stop, 0) != 0 || on(SIGINT, request_stop, 0) != 0 ||
      on(SIGCHLD, reap_children, SA_NOCLDSTOP | SA_RESTART) != 0) {
    static const char message[] = "pause: cannot install signal handlers\n";
    (void)!write(2, message, sizeof message - 1);
    return 1;
  }
  /* Children that ended before the handler was in place sent their SIGCHLD too early. */
  reap_children(0);
  while (!stop_requested) pause();
  return 0;
}
