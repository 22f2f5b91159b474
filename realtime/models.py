"""The outbox: room events written in the transaction of the change they
announce (``realtime.outbox``); the counts rolled up per show and minute
(``realtime.counting``)."""

from __future__ import annotations

from django.db import models


class RoomSequence(models.Model):
    """The last ``seq`` given to a persisted event of one show's room.

    Taken in the transaction that writes the event, so seqs are gapless and in
    commit order per show, and they survive a Redis restart (Redis only carries
    them)."""

    show_id = models.BigIntegerField(primary_key=True)
    seq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"show {self.show_id} at seq {self.seq}"


class OutboxEvent(models.Model):
    """One event waiting to be published, or published and kept for resumes.

    ``data`` is the bus message as the hub reads it: ``E<event json>`` for the
    room (with its ``seq``), ``P<recipient>\\n<event json>`` for one audience
    member, ``C<command json>`` for every process (``show_id`` 0)."""

    id = models.BigAutoField(primary_key=True)
    show_id = models.BigIntegerField()
    seq = models.BigIntegerField(null=True)
    data = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["show_id", "seq"],
                condition=models.Q(seq__isnull=False),
                name="outbox_one_event_per_seq",
            )
        ]
        indexes = [
            models.Index(
                fields=["id"],
                condition=models.Q(published_at__isnull=True),
                name="outbox_unpublished",
            ),
            models.Index(fields=["created_at"], name="outbox_created"),
        ]

    def __str__(self) -> str:
        return f"{self.data[:60]} (show {self.show_id}, seq {self.seq})"


class ShowMinuteCount(models.Model):
    """One metric of one show in one minute, copied from the counting store by
    ``realtime.counting.rollup`` as an absolute value (rewritten, never added
    to). ``metric`` is a sum (``chat``, ``revenue.EUR``, ``p12.holds``), a
    maximum (``max.viewers``) or a unique count (``u.viewers``)."""

    id = models.BigAutoField(primary_key=True)
    show_id = models.BigIntegerField()
    minute = models.DateTimeField()
    metric = models.CharField(max_length=64)
    value = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["show_id", "minute", "metric"], name="count_one_per_minute"
            )
        ]

    def __str__(self) -> str:
        return f"show {self.show_id} {self.minute:%Y-%m-%d %H:%M} {self.metric}"


class ShowTotalCount(models.Model):
    """A figure of a whole show that the minutes cannot add up to: its unique
    counts (``u.viewers``, ``u.buyers``) and maxima (``max.viewers``)."""

    id = models.BigAutoField(primary_key=True)
    show_id = models.BigIntegerField()
    metric = models.CharField(max_length=64)
    value = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["show_id", "metric"], name="count_one_per_show"
            )
        ]

    def __str__(self) -> str:
        return f"show {self.show_id} {self.metric}"
