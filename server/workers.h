/* Local workers: in embedded mode (and with --workers N) rankqld runs rankql-worker as a
 * child process against its own database, restarts it when it dies, and stops it on exit,
 * so one command gives a system that runs jobs. Workers elsewhere just point at the same
 * database (docs/jobs.md "Workers"). */
#ifndef RANKQL_SERVER_WORKERS_H
#define RANKQL_SERVER_WORKERS_H

typedef struct local_workers local_workers;

/* Starts rankql-worker --db conninfo --data-dir data_dir --slots slots. The program is
 * $RANKQL_WORKER, else rankql-worker next to this executable. NULL with *err. */
local_workers *local_workers_start(const char *conninfo, const char *data_dir, int slots,
                                   char **err);

/* Restarts the worker if it exited (at most once per few seconds, so a worker that cannot
 * start does not spin). Call it periodically. */
void local_workers_check(local_workers *w);

/* SIGTERM, then SIGKILL after a grace period; frees w. NULL is fine. */
void local_workers_stop(local_workers *w);

#endif
