package bridge

import (
	"context"
	"errors"
	"slices"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/janus"
)

// errNoPublisher: the room has none of the publishers the bridge records
// (yet); the bridge waits.
var errNoPublisher = errors.New("no publisher to record in the room")

// videoRoomPlugin subscribes to VideoRoom publishers with one multistream
// subscription: the configured feeds, or every publisher (feeds = "all"),
// following them as they come (polled every followPoll) and go (Janus
// re-offers without them).
type videoRoomPlugin struct {
	cfg  *config.Bridge
	room janus.ID
	own  *OwnFeeds // skipped by feeds = "all" unless include_own
	// mids maps the subscription's mids to their publishers, from the
	// layout Janus sends with each offer.
	mids map[string]feedInfo
	// subscribed are the publishers in the subscription.
	subscribed map[janus.ID]bool
}

func newVideoRoomPlugin(cfg *config.Bridge, own *OwnFeeds) *videoRoomPlugin {
	return &videoRoomPlugin{cfg: cfg, room: JanusID(cfg.Room), own: own, mids: map[string]feedInfo{}, subscribed: map[janus.ID]bool{}}
}

// wanted lists the publishers of the room that the bridge records.
func (v *videoRoomPlugin) wanted(ctx context.Context, h *janus.Handle) ([]janus.ID, error) {
	parts, err := janus.VideoRoomListParticipants(ctx, h, v.room)
	if err != nil {
		return nil, err
	}
	return v.pick(parts), nil
}

// pick chooses among the participants of the room the publishers that the
// bridge records: the configured feeds, or with feeds = "all" every
// publisher but this daemon's own (unless include_own).
func (v *videoRoomPlugin) pick(parts []janus.VideoRoomParticipant) []janus.ID {
	var ids []janus.ID
	for _, p := range parts {
		switch {
		case !p.Publisher:
		case v.cfg.Feeds.All:
			if v.cfg.IncludeOwn || !v.own.Has(v.room, p.ID) {
				ids = append(ids, p.ID)
			}
		case slices.ContainsFunc(v.cfg.Feeds.IDs, func(id config.ID) bool { return JanusID(id) == p.ID }):
			ids = append(ids, p.ID)
		}
	}
	return ids
}

// stream addresses all the streams of publisher id in a subscription, with
// the configured simulcast substream.
func (v *videoRoomPlugin) stream(id janus.ID) janus.VideoRoomStream {
	return janus.VideoRoomStream{Feed: id, Substream: v.cfg.Substream}
}

func (v *videoRoomPlugin) offer(ctx context.Context, h *janus.Handle) (*janus.JSEP, error) {
	ids, err := v.wanted(ctx, h)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errNoPublisher
	}
	streams := make([]janus.VideoRoomStream, len(ids))
	for i, id := range ids {
		streams[i] = v.stream(id)
	}
	offer, att, err := janus.VideoRoomJoinSubscriber(ctx, h, v.room, v.cfg.Pin, streams, 0)
	if err != nil {
		return nil, err
	}
	v.learn(att.Streams)
	return offer, nil
}

func (v *videoRoomPlugin) start(ctx context.Context, h *janus.Handle, answer *janus.JSEP) error {
	return janus.VideoRoomStart(ctx, h, answer)
}

func (v *videoRoomPlugin) restart(ctx context.Context, h *janus.Handle) (*janus.JSEP, error) {
	return janus.VideoRoomSubscriberConfigure(ctx, h, janus.VideoRoomSubscriberConfigureRequest{Restart: true})
}

func (v *videoRoomPlugin) feedOf(mid string) feedInfo { return v.mids[mid] }

// event learns the new layout that comes with Janus's own re-offers (a
// publisher left, or a postponed update).
func (v *videoRoomPlugin) event(m *janus.Message) {
	if ev, err := janus.ParseVideoRoomEvent(m); err == nil && ev.Streams != nil {
		v.learn(ev.Streams)
	}
}

// poll subscribes to the publishers that appeared since.
func (v *videoRoomPlugin) poll(ctx context.Context, h *janus.Handle) (*janus.JSEP, error) {
	ids, err := v.wanted(ctx, h)
	if err != nil {
		return nil, err
	}
	var add []janus.VideoRoomStream
	for _, id := range ids {
		if !v.subscribed[id] {
			add = append(add, v.stream(id))
		}
	}
	if len(add) == 0 {
		return nil, nil
	}
	offer, ev, err := janus.VideoRoomUpdate(ctx, h, add, nil)
	if err != nil {
		return nil, err
	}
	if ev != nil && ev.Streams != nil {
		v.learn(ev.Streams)
	}
	return offer, nil // nil when Janus postponed it: the offer comes as an event
}

// learn takes the subscription layout: which publisher feeds which mid.
func (v *videoRoomPlugin) learn(streams []janus.VideoRoomSubscribedStream) {
	v.mids = map[string]feedInfo{}
	v.subscribed = map[janus.ID]bool{}
	for _, s := range streams {
		if !s.Active || s.FeedID.IsZero() {
			continue
		}
		v.mids[s.MID] = feedInfo{id: s.FeedID.String(), display: s.FeedDisplay}
		v.subscribed[s.FeedID] = true
	}
}
