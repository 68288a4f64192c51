package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assay-dev/assay/internal/evaluation"
)

// EventsChannel is the NOTIFY channel of evaluation events. Every replica
// listens on it, so a stream served by one replica follows a job that runs
// on another.
const EventsChannel = "assay_evaluation_events"

// Notify implements evaluation.Notifier with pg_notify. The payload is only
// the id and the event name (NOTIFY payloads are small); listeners re-read
// the evaluation.
func (s *Store) Notify(ctx context.Context, ev evaluation.Event) error {
	payload, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, "SELECT pg_notify($1, $2)", EventsChannel, string(payload))
	return classify("publishing event", err)
}

// listenRetry is the pause before reconnecting a dropped listener.
const listenRetry = time.Second

// Listen hands every event published on EventsChannel, by any replica, to
// deliver, until ctx ends. It holds a connection of its own (a LISTEN
// would pin a pooled one anyway) and reconnects when it drops; after each
// reconnection it delivers an event with no id, which tells followers to
// re-read, since events sent meanwhile are lost.
func (s *Store) Listen(ctx context.Context, deliver func(evaluation.Event)) {
	cfg := s.pool.Config().ConnConfig.Copy()
	first := true
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, cfg, deliver, first)
		if ctx.Err() != nil {
			return
		}
		first = false
		s.log.Warn("event listener lost its connection; reconnecting", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(listenRetry):
		}
	}
}

func (s *Store) listenOnce(ctx context.Context, cfg *pgx.ConnConfig, deliver func(evaluation.Event), first bool) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+EventsChannel); err != nil {
		return err
	}
	if !first {
		deliver(evaluation.Event{})
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var ev evaluation.Event
		if json.Unmarshal([]byte(n.Payload), &ev) == nil && ev.EvaluationID != "" {
			deliver(ev)
		}
	}
}
