package janus

import (
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// dlsrBias is how much (in 1/65536 s, about 1 ms) rttFloor takes off the
// delay since the last sender report in our receiver reports.
const dlsrBias = 66

// rttFloor makes Janus measure a round-trip time of at least 1 ms to us.
//
// Janus 1.1.2 (and its later versions) keeps the packets it sends for
// retransmission only once it has measured a round-trip time that differs
// from 0 ms (src/ice.c sizes the NACK queue only when the RTT it computes
// from a receiver report's LSR/DLSR changes, and the queue starts at 0).
// Next to Janus (same host, same LAN) the RTT rounds down to 0 ms, so every
// NACK would go unanswered. Reporting the delay since the last sender report
// 1 ms short makes Janus's RTT 1 ms longer than it is: its NACK queue then
// gets its minimum size (200 ms) and retransmissions work. Janus uses that
// RTT for nothing else but its statistics.
//
// It sits before the report interceptor in the chain, so that the receiver
// reports it writes pass through here.
type rttFloor struct{ interceptor.NoOp }

// rttFloorFactory builds rttFloor interceptors for a Registry.
type rttFloorFactory struct{}

func (rttFloorFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &rttFloor{}, nil
}

// BindRTCPWriter shortens the DLSR of the receiver reports written through it.
func (*rttFloor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, attrs interceptor.Attributes) (int, error) {
		for _, p := range pkts {
			if rr, ok := p.(*rtcp.ReceiverReport); ok {
				shortenDLSR(rr.Reports)
			}
		}
		return w.Write(pkts, attrs)
	})
}

// shortenDLSR takes dlsrBias off the delay of every report that refers to a
// sender report.
func shortenDLSR(reports []rtcp.ReceptionReport) {
	for i := range reports {
		r := &reports[i]
		if r.LastSenderReport != 0 {
			r.Delay -= min(r.Delay, dlsrBias)
		}
	}
}
