package jobs

import (
	"context"
	"sync"

	"github.com/assay-dev/assay/internal/evaluation"
)

// Broker fans evaluation events out to the streams that follow them in
// this process. In memory mode the workers publish to it directly; on
// PostgreSQL the workers NOTIFY and each replica's listener publishes what
// it hears, so a stream follows a job run by any replica.
type Broker struct {
	mu   sync.Mutex
	subs map[string]map[chan evaluation.Event]struct{}
}

// subscriberBuffer holds the events a slow stream has not read yet. A
// stream that falls further behind misses events but not the outcome: it
// re-reads the evaluation on every event and heartbeat.
const subscriberBuffer = 16

// NewBroker returns a broker with no subscribers.
func NewBroker() *Broker {
	return &Broker{subs: map[string]map[chan evaluation.Event]struct{}{}}
}

// Subscribe follows evaluation id until cancel is called. Besides id's
// events it receives events with no id: "re-read, events may be lost".
func (b *Broker) Subscribe(id string) (<-chan evaluation.Event, func()) {
	ch := make(chan evaluation.Event, subscriberBuffer)
	b.mu.Lock()
	if b.subs[id] == nil {
		b.subs[id] = map[chan evaluation.Event]struct{}{}
	}
	b.subs[id][ch] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs[id], ch)
			if len(b.subs[id]) == 0 {
				delete(b.subs, id)
			}
			b.mu.Unlock()
		})
	}
}

// Publish hands ev to the followers of its evaluation, or to every
// follower when it has no id. It never blocks.
func (b *Broker) Publish(ev evaluation.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	send := func(subs map[chan evaluation.Event]struct{}) {
		for ch := range subs {
			select {
			case ch <- ev:
			default: // the stream is behind; it catches up by re-reading
			}
		}
	}
	if ev.EvaluationID != "" {
		send(b.subs[ev.EvaluationID])
		return
	}
	for _, subs := range b.subs {
		send(subs)
	}
}

// Notify implements evaluation.Notifier for memory mode.
func (b *Broker) Notify(_ context.Context, ev evaluation.Event) error {
	b.Publish(ev)
	return nil
}
