/* poll_notify: see poll_notify.h */
#include "poll_notify.h"

#include <errno.h>
#include <stdlib.h>

#include "threads.h"

struct pn_item {
	struct pn_item *next;
	struct fuse_pollhandle *ph;   /* a poll to wake, or NULL: */
	fuse_ino_t ino;               /* an inode whose cache to drop */
};

static void *run(void *arg)
{
	struct poll_notify *pn = arg;

	pthread_mutex_lock(&pn->lock);
	for (;;) {
		while (!pn->head && !pn->stopping)
			pthread_cond_wait(&pn->cond, &pn->lock);
		struct pn_item *it = pn->head;
		if (!it)
			break;
		pn->head = it->next;
		if (!pn->head)
			pn->tail = &pn->head;
		pthread_mutex_unlock(&pn->lock);
		/* The poller may have gone, the inode be forgotten: the
		 * kernel then ignores it. */
		if (it->ph) {
			fuse_lowlevel_notify_poll(it->ph);
			fuse_pollhandle_destroy(it->ph);
		} else {
			fuse_lowlevel_notify_inval_inode(pn->se, it->ino, 0, 0);
		}
		free(it);
		pthread_mutex_lock(&pn->lock);
	}
	pthread_mutex_unlock(&pn->lock);
	return NULL;
}

int poll_notify_start(struct poll_notify *pn, struct fuse_session *se)
{
	int rc;

	pn->se = se;
	pthread_mutex_init(&pn->lock, NULL);
	pthread_cond_init(&pn->cond, NULL);
	pn->head = NULL;
	pn->tail = &pn->head;
	pn->stopping = false;
	rc = thread_start(&pn->thread, NULL, run, pn);
	pn->started = rc == 0;
	return -rc;
}

/* Queues IT (NULL: no memory), or frees it if the thread is not there. */
static void push(struct poll_notify *pn, struct pn_item *it, struct fuse_pollhandle *ph)
{
	if (it) {
		pthread_mutex_lock(&pn->lock);
		if (!pn->stopping) {
			*pn->tail = it;
			pn->tail = &it->next;
			pthread_cond_signal(&pn->cond);
			pthread_mutex_unlock(&pn->lock);
			return;
		}
		pthread_mutex_unlock(&pn->lock);
		free(it);
	}
	if (ph)
		fuse_pollhandle_destroy(ph);
}

void poll_notify_push(struct poll_notify *pn, struct fuse_pollhandle *ph)
{
	struct pn_item *it = pn->started ? calloc(1, sizeof(*it)) : NULL;

	if (it)
		it->ph = ph;
	push(pn, it, ph);
}

void poll_notify_inval(struct poll_notify *pn, fuse_ino_t ino)
{
	struct pn_item *it = pn->started ? calloc(1, sizeof(*it)) : NULL;

	if (it)
		it->ino = ino;
	push(pn, it, NULL);
}

void poll_notify_stop(struct poll_notify *pn)
{
	if (!pn->started)
		return;
	pthread_mutex_lock(&pn->lock);
	pn->stopping = true;
	pthread_cond_signal(&pn->cond);
	pthread_mutex_unlock(&pn->lock);
	pthread_join(pn->thread, NULL);
}

void poll_notify_free(struct poll_notify *pn)
{
	if (!pn->started)
		return;
	pn->started = false;
	pthread_cond_destroy(&pn->cond);
	pthread_mutex_destroy(&pn->lock);
}
