/* log: see log.h */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <syslog.h>

/* Daemonized (fuse_daemonize() points stderr at /dev/null), or started with
 * no stderr at all: messages go to syslog (the journal) instead. Asked each
 * time rather than remembered, as messages are few. */
static bool stderr_goes_nowhere(void)
{
	struct stat st;

	if (fstat(2, &st) < 0)
		return true;
	return S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
}

__attribute__((format(printf, 3, 0)))
static void emit(int priority, const char *level, const char *fmt, va_list ap)
{
	char buf[2048];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (stderr_goes_nowhere())
		syslog(LOG_DAEMON | priority, "%s%s", level, buf);
	else
		fprintf(stderr, "agentbayfs: %s%s\n", level, buf);
}

void log_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit(LOG_ERR, "error: ", fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit(LOG_WARNING, "warning: ", fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit(LOG_INFO, "", fmt, ap);
	va_end(ap);
}
