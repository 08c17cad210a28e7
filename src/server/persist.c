/*
 * Write routes and the store: "acknowledged means durable".
 *
 * A write route validates its input on the loop, then hands the change to the store and
 * suspends its transaction (the connection goes BUSY, as an inference does). The store's
 * writer thread commits it together with whatever else is queued (group commit) and posts
 * the job to the loop's done list; the loop then applies the change to memory and answers.
 * So the loops never wait for the disk, a failed commit leaves nothing half-applied (503
 * storage_unavailable with the store's reason), and nothing is answered 2xx before it is on
 * disk.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"
#include "util/str.h"

void af__commit_finish(af_server *s, af__job *j)
{
    af__apply_fn apply = j->apply;
    j->apply = NULL; /* once */
    af__resp *rs = &j->resp;
    if (j->commit_rc != 0) {
        if (j->undo)
            j->undo(s, j->ctx, rs);
        af__resp_error(rs, 503, "storage_unavailable", "the change was not saved: %s",
                       j->commit_err[0] ? j->commit_err : af_strerror(j->commit_rc));
        return;
    }
    apply(s, j->ctx, rs);
}

/* Writer thread: the commit is over; the loop takes it from here. */
static void commit_done(int rc, const char *err, void *user)
{
    af__job *j = user;
    af_server *s = j->srv;
    j->commit_rc = rc;
    if (rc)
        af__strlcpy(j->commit_err, err ? err : "", sizeof(j->commit_err));
    af__loop *l = j->loop;
    pthread_mutex_lock(&s->job_mu);
    /* A group commit answers many jobs at once: only the first into an empty list wakes the
     * loop (it takes the whole list when it drains). The wake-up comes before the count
     * drops, under the lock: af_server_stop frees the loops once it sees no commit pending,
     * and a wake-up after the unlock could write to their closed eventfd (TSan caught it). */
    if (!l->done_head)
        af__loop_wake(l);
    j->next = l->done_head;
    l->done_head = j;
    s->commits_pending--;
    if (!s->commits_pending)
        pthread_cond_broadcast(&s->job_cv);
    pthread_mutex_unlock(&s->job_mu);
}

int af__commit(af__req *rq, af__resp *rs, const af_store_op *op, af__apply_fn apply, void *ctx,
               void (*ctx_free)(void *ctx))
{
    return af__commit_or_undo(rq, rs, op, apply, NULL, ctx, ctx_free);
}

int af__commit_or_undo(af__req *rq, af__resp *rs, const af_store_op *op, af__apply_fn apply,
                       af__apply_fn undo, void *ctx, void (*ctx_free)(void *ctx))
{
    af_server *s = rq->srv;
    if (!s->o.store) {
        apply(s, ctx, rs);
        if (ctx_free)
            ctx_free(ctx);
        return 0;
    }
    af__job *j = calloc(1, sizeof(*j));
    if (!j) {
        if (undo)
            undo(s, ctx, rs);
        if (ctx_free)
            ctx_free(ctx);
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    j->apply = apply;
    j->undo = undo;
    j->ctx = ctx;
    j->ctx_free = ctx_free;
    j->srv = s;
    j->loop = rq->loop;
    j->conn = rq->conn;
    af__resp_init(&j->resp);
    pthread_mutex_lock(&s->job_mu);
    if (s->inflight >= s->o.max_inflight || s->workers_stop) {
        pthread_mutex_unlock(&s->job_mu);
        af__resp_error(rs, 503, "overloaded", "%u requests in flight; try again later",
                       s->o.max_inflight);
        goto fail;
    }
    s->inflight++;
    s->commits_pending++;
    pthread_mutex_unlock(&s->job_mu);
    /* The completion cannot overtake us: it is drained by this loop, which is here. */
    int rc = af_store_submit(s->o.store, op, commit_done, j);
    if (rc != 0) {
        pthread_mutex_lock(&s->job_mu);
        s->inflight--;
        s->commits_pending--;
        if (!s->commits_pending)
            pthread_cond_broadcast(&s->job_cv);
        pthread_mutex_unlock(&s->job_mu);
        af__resp_error(rs, 503, "storage_unavailable", "the change was not saved: %s",
                       rc == AF_EFULL ? "the store's queue is full" : af_strerror(rc));
        goto fail;
    }
    rq->conn->txn.job = j;
    rq->conn->state = AF__CONN_BUSY;
    return AF__ASYNC;
fail:
    if (undo)
        undo(s, ctx, rs);
    j->apply = NULL;
    af__resp_free(&j->resp);
    if (ctx_free)
        ctx_free(ctx);
    free(j);
    return 0;
}
