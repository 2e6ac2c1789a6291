package janus

import (
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// FeedbackCounter counts the NACKs that the PeerConnections of an API send
// (pion's NACK generator asking Janus to resend lost packets), per
// PeerConnection and media SSRC. Give it to NewAPI in
// WebRTCOptions.Feedback, then tell it with CountNACKs where to add the
// counts of a received track. The zero value is ready to use; it is safe
// for concurrent use.
//
// A NACK is counted per packet asked for (each sequence number of its
// pairs), as Janus counts the NACKs it receives ("nacks" in the Admin API's
// media statistics). A packet asked for again is counted again.
type FeedbackCounter struct {
	mu  sync.Mutex
	pcs map[string]*pcFeedback // by PeerConnection id
}

// pcFeedback are the counts of one PeerConnection.
type pcFeedback struct {
	refs int // interceptors built for this id (ids can repeat)

	mu      sync.Mutex
	targets map[uint32]*atomic.Uint64 // by media SSRC
	pending map[uint32]uint64         // NACKs sent before CountNACKs
}

// CountNACKs makes c add to nacks the NACKs that pc sends about the media
// SSRC ssrc from now on, plus those already sent, until pc is closed. pc
// must come from an API built with c; for others it does nothing.
func (c *FeedbackCounter) CountNACKs(pc *webrtc.PeerConnection, ssrc uint32, nacks *atomic.Uint64) {
	c.countNACKs(pc.ID(), ssrc, nacks)
}

func (c *FeedbackCounter) countNACKs(id string, ssrc uint32, nacks *atomic.Uint64) {
	c.mu.Lock()
	f := c.pcs[id]
	c.mu.Unlock()
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.targets == nil {
		f.targets = map[uint32]*atomic.Uint64{}
	}
	f.targets[ssrc] = nacks
	if n := f.pending[ssrc]; n > 0 {
		nacks.Add(n)
		delete(f.pending, ssrc)
	}
}

// NewInterceptor implements interceptor.Factory: the counter of one
// PeerConnection (pion passes its id).
func (c *FeedbackCounter) NewInterceptor(id string) (interceptor.Interceptor, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pcs == nil {
		c.pcs = map[string]*pcFeedback{}
	}
	f := c.pcs[id]
	if f == nil {
		f = &pcFeedback{}
		c.pcs[id] = f
	}
	f.refs++
	return &feedbackInterceptor{c: c, id: id, f: f}, nil
}

// release forgets a PeerConnection once its last interceptor closes.
func (c *FeedbackCounter) release(id string, f *pcFeedback) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.refs--; f.refs == 0 && c.pcs[id] == f {
		delete(c.pcs, id)
	}
}

// add counts n NACKs about ssrc.
func (f *pcFeedback) add(ssrc uint32, n uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.targets[ssrc]; t != nil {
		t.Add(n)
		return
	}
	if f.pending == nil {
		f.pending = map[uint32]uint64{}
	}
	f.pending[ssrc] += n
}

// feedbackInterceptor counts the NACKs written through the RTCP writer it
// binds. It must come before the NACK generator in the registry: the
// generator writes through the writer the interceptors before it returned.
type feedbackInterceptor struct {
	interceptor.NoOp
	c         *FeedbackCounter
	id        string
	f         *pcFeedback
	closeOnce sync.Once
}

// BindRTCPWriter implements interceptor.Interceptor.
func (i *feedbackInterceptor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, a interceptor.Attributes) (int, error) {
		for _, p := range pkts {
			if nack, ok := p.(*rtcp.TransportLayerNack); ok {
				i.f.add(nack.MediaSSRC, nackedPackets(nack))
			}
		}
		return w.Write(pkts, a)
	})
}

// Close implements interceptor.Interceptor.
func (i *feedbackInterceptor) Close() error {
	i.closeOnce.Do(func() { i.c.release(i.id, i.f) })
	return nil
}

// nackedPackets counts the packets a NACK asks for.
func nackedPackets(n *rtcp.TransportLayerNack) uint64 {
	var total uint64
	for _, p := range n.Nacks {
		total += 1 + uint64(bits.OnesCount16(uint16(p.LostPackets)))
	}
	return total
}
