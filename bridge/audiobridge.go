package bridge

import (
	"context"
	"errors"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/janus"
)

// errAudioBridgeRestart: the AudioBridge plugin of Janus 1.1.2 cannot
// restart ICE on a PeerConnection it offered (its re-offers carry no
// restart flag for the core); the bridge renegotiates from scratch instead.
var errAudioBridgeRestart = errors.New("audiobridge: no ICE restart on a plugin-offered session: renegotiating")

// audioBridgePlugin joins an AudioBridge room as a muted participant and
// records the mix of the room that Janus sends it (everyone but itself,
// which says nothing). Janus offers (generate_offer): its audio m-line is
// sendrecv and our answer recvonly, so the recv bridge's negotiation is the
// same as for the other plugins.
type audioBridgePlugin struct{ cfg *config.Bridge }

func (a audioBridgePlugin) offer(ctx context.Context, h *janus.Handle) (*janus.JSEP, error) {
	j, err := janus.AudioBridgeJoin(ctx, h, JanusID(a.cfg.Room), a.join())
	if err != nil {
		return nil, err
	}
	return j.JSEP, nil
}

// join is the join request: muted (a listener), Janus offering.
func (a audioBridgePlugin) join() janus.AudioBridgeJoinRequest {
	return janus.AudioBridgeJoinRequest{Display: "janusbridge " + a.cfg.Name, Pin: a.cfg.Pin, Muted: true, GenerateOffer: true}
}

func (audioBridgePlugin) start(ctx context.Context, h *janus.Handle, answer *janus.JSEP) error {
	_, err := janus.AudioBridgeConfigure(ctx, h, janus.AudioBridgeConfigureRequest{}, answer)
	return err
}

func (audioBridgePlugin) restart(context.Context, *janus.Handle) (*janus.JSEP, error) {
	return nil, errAudioBridgeRestart
}

func (audioBridgePlugin) feedOf(string) feedInfo { return feedInfo{} }

func (audioBridgePlugin) event(*janus.Message) {}

func (audioBridgePlugin) poll(context.Context, *janus.Handle) (*janus.JSEP, error) { return nil, nil }
