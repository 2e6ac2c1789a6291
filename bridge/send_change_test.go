package bridge

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/media"
)

// fakeSource is a source that describes its tracks and sends nothing.
type fakeSource struct{ tracks []media.Track }

func (f *fakeSource) Tracks() []media.Track { return f.tracks }

func (f *fakeSource) Run(ctx context.Context, _ media.PacketWriter) error {
	<-ctx.Done()
	return nil
}

func (f *fakeSource) RequestKeyframe(int) {}

// openFake makes a fakeSource of an RTP source configuration.
func openFake(c *config.Source) (media.Source, error) {
	f := &fakeSource{}
	for i, t := range c.Tracks {
		clock := uint32(90000)
		if t.Kind == "audio" {
			clock = 48000
		}
		f.tracks = append(f.tracks, media.Track{Index: i, Kind: t.Kind, Codec: t.Codec, ClockRate: clock, PayloadType: uint8(t.PayloadType)})
	}
	return f, nil
}

// TestChangeTracksRules checks the track changes a send bridge refuses and
// what the accepted ones do to its tracks and running sources, without
// Janus (no session: tracks are found by index).
func TestChangeTracksRules(t *testing.T) {
	cfg := &config.Bridge{Name: "cam", Plugin: config.PluginVideoRoom, Source: &config.Source{Type: config.SourceRTP, Tracks: []config.SourceTrack{
		{Kind: "video", Codec: "vp8", Listen: "127.0.0.1:1", PayloadType: 96},
		{Kind: "audio", Codec: "opus", Listen: "127.0.0.1:2", PayloadType: 111},
	}}}
	b := &Bridge{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	s := newSend(b, openFake)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		cancel()
		s.stop()
	}()
	if err := s.start(ctx); err != nil {
		t.Fatal(err)
	}
	b.tx.Store(s)
	rtp := func(kind, codec string) *TrackSpec {
		return &TrackSpec{Kind: kind, Codec: codec, Listen: "127.0.0.1:3", PayloadType: 100}
	}
	refused := []struct {
		change TrackChange
		want   string
	}{
		{TrackChange{Action: "swap", MID: "0"}, "unknown action"},
		{TrackChange{Action: TrackReplace, MID: "0"}, "no track given"},
		{TrackChange{Action: TrackReplace, MID: "0", Track: rtp("audio", "opus")}, "same codec"},
		{TrackChange{Action: TrackReplace, MID: "0", Track: rtp("video", "vp9")}, "same codec"},
		{TrackChange{Action: TrackReplace, MID: "7", Track: rtp("video", "vp8")}, `no track with mid "7"`},
		{TrackChange{Action: TrackReplace, Track: rtp("video", "vp8")}, "no mid given"},
		{TrackChange{Action: TrackAdd, Track: rtp("video", "opus")}, "not a video codec"},
		{TrackChange{Action: TrackAdd, Track: rtp("data", "")}, "want audio or video"},
		{TrackChange{Action: TrackAdd, Track: &TrackSpec{Kind: "video", File: "a.webm", Listen: "127.0.0.1:4"}}, "both given"},
		{TrackChange{Action: TrackAdd, Track: &TrackSpec{Kind: "video"}}, "neither file nor listen"},
	}
	for _, r := range refused {
		err := b.ChangeTracks(ctx, r.change)
		if err == nil || !strings.Contains(err.Error(), r.want) {
			t.Errorf("%+v: error %v, want one saying %q", r.change, err, r.want)
		}
	}
	inputs := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.inputs)
	}

	// Replacing the video keeps the configured source for the audio.
	if err := b.ChangeTracks(ctx, TrackChange{Action: TrackReplace, MID: "0", Track: rtp("video", "vp8")}); err != nil {
		t.Fatal(err)
	}
	if n := inputs(); n != 2 {
		t.Errorf("%d sources running after replacing the video, want 2", n)
	}
	// Replacing the audio too: the configured source has nothing left.
	if err := b.ChangeTracks(ctx, TrackChange{Action: TrackReplace, MID: "1", Track: rtp("audio", "opus")}); err != nil {
		t.Fatal(err)
	}
	if n := inputs(); n != 2 {
		t.Errorf("%d sources running after replacing both tracks, want 2", n)
	}
	// Add a second video, remove the first; the last track cannot go.
	if err := b.ChangeTracks(ctx, TrackChange{Action: TrackAdd, Track: rtp("video", "h264")}); err != nil {
		t.Fatal(err)
	}
	if tr := b.Stats().Tracks; len(tr) != 3 || tr[2].Index != 2 || tr[2].Codec != "h264" || tr[2].Direction != "out" {
		t.Errorf("tracks %+v after the add", tr)
	}
	for _, mid := range []string{"0", "2"} {
		if err := b.ChangeTracks(ctx, TrackChange{Action: TrackRemove, MID: mid}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.ChangeTracks(ctx, TrackChange{Action: TrackRemove, MID: "1"}); err == nil || !strings.Contains(err.Error(), "last track") {
		t.Errorf("removing the last track: %v", err)
	}
	if n := inputs(); n != 1 || len(s.activeTracks()) != 1 {
		t.Errorf("%d sources, %d tracks after the removals, want 1 and 1", n, len(s.activeTracks()))
	}

	// A Streaming mountpoint's streams are fixed; a recv bridge has no source.
	cfg.Plugin = config.PluginStreaming
	if err := b.ChangeTracks(ctx, TrackChange{Action: TrackAdd, Track: rtp("video", "vp8")}); err == nil || !strings.Contains(err.Error(), "fixed") {
		t.Errorf("adding to a Streaming bridge: %v", err)
	}
	recvBridge := &Bridge{cfg: &config.Bridge{Name: "rec", Plugin: config.PluginStreaming, Sinks: []config.Sink{{Type: "mkv"}}}}
	if err := recvBridge.ChangeTracks(ctx, TrackChange{Action: TrackRemove, MID: "0"}); err == nil || !strings.Contains(err.Error(), "receives") {
		t.Errorf("changing a recv bridge's tracks: %v", err)
	}
}
