/* log: the daemon's messages on stderr, each prefixed "agentbayfs: ", or
 * to syslog (facility daemon) once stderr goes nowhere (in the background).
 * Owns nothing: formatting only; errors carry their errno text in the
 * message itself. */
#ifndef AGENTBAYFS_LOG_H
#define AGENTBAYFS_LOG_H

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
