/*
 * What `agentaflow serve` does for systemd (the units in packaging/systemd): the sd_notify
 * protocol (READY, RELOADING, STOPPING, STATUS and the watchdog) and the default
 * configuration file in $CONFIGURATION_DIRECTORY. Linked into the program only, never into
 * the libraries: a C application embedding libagentaflow owns its own service-manager
 * integration. Without NOTIFY_SOCKET (not started by systemd) every call does nothing.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "app.h"

void app_sd_notifyf(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* A truncated message could cut a STATUS= line into a wrong state; drop it instead. */
    if (n < 0 || (size_t)n >= sizeof(msg))
        return;
    /* Best effort: a service manager that went away must not stop the daemon. */
    (void)sd_notify(0, msg);
}

void app_sd_reloading(void)
{
    /* systemd >= 253 wants the CLOCK_MONOTONIC time with RELOADING=1 to order it against
     * the reload request; older versions ignore the field. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    app_sd_notifyf("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu",
                   (unsigned long long)ts.tv_sec * 1000000ULL +
                       (unsigned long long)ts.tv_nsec / 1000ULL);
}

int app_sd_wait_signal(const sigset_t *set)
{
    /* sd_watchdog_enabled is true only when WATCHDOG_USEC is set and WATCHDOG_PID is unset
     * or this process: a watchdog meant for a parent (a wrapper script) is not ours. */
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) {
        int sig = 0;
        return sigwait(set, &sig) == 0 ? sig : -1;
    }
    /* Half the interval, as sd_watchdog_enabled(3) advises, so one late wake-up does not
     * get the service killed. */
    uint64_t half = usec / 2;
    struct timespec ts = {.tv_sec = (time_t)(half / 1000000),
                          .tv_nsec = (long)(half % 1000000) * 1000};
    for (;;) {
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig > 0)
            return sig;
        if (errno == EAGAIN)
            (void)sd_notify(0, "WATCHDOG=1");
        else if (errno != EINTR)
            return -1;
    }
}

const char *app_default_config(char *buf, size_t cap)
{
    /* With several ConfigurationDirectory= entries systemd joins them with ':'; ours is the
     * first. */
    const char *dirs = getenv("CONFIGURATION_DIRECTORY");
    if (!dirs || !*dirs)
        return NULL;
    size_t len = strcspn(dirs, ":");
    int n = snprintf(buf, cap, "%.*s/agentaflow.yaml", (int)len, dirs);
    if (n < 0 || (size_t)n >= cap || access(buf, F_OK) != 0)
        return NULL;
    return buf;
}
