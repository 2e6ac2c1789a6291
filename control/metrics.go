package control

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/janusbridge/janusbridge/bridge"
)

// The metrics of SPEC §7. Track counters carry direction "in" for the
// tracks a bridge receives from Janus and "out" for those it sends; the
// RTCP counters' direction is their track's.
var (
	descUp = prometheus.NewDesc("janusbridge_bridge_up",
		"1 while the bridge is up, else 0.", []string{"bridge"}, nil)
	descState = prometheus.NewDesc("janusbridge_bridge_state",
		"1 for the bridge's current state.", []string{"bridge", "state"}, nil)
	descPackets = prometheus.NewDesc("janusbridge_rtp_packets_total",
		"RTP packets of a track, retransmissions included.", []string{"bridge", "feed", "mid", "kind", "direction"}, nil)
	descBytes = prometheus.NewDesc("janusbridge_rtp_bytes_total",
		"RTP bytes of a track, headers included.", []string{"bridge", "feed", "mid", "kind", "direction"}, nil)
	descLost = prometheus.NewDesc("janusbridge_rtp_lost_packets_total",
		"RTP packets of a track never recovered.", []string{"bridge", "feed", "mid"}, nil)
	descNACK = prometheus.NewDesc("janusbridge_rtcp_nack_total",
		"RTCP NACKs of a track.", []string{"bridge", "feed", "mid", "direction"}, nil)
	descPLI = prometheus.NewDesc("janusbridge_rtcp_pli_total",
		"RTCP keyframe requests (PLI) of a track.", []string{"bridge", "feed", "mid", "direction"}, nil)
	descSinkBytes = prometheus.NewDesc("janusbridge_sink_bytes_total",
		"Bytes a sink wrote.", []string{"bridge", "sink"}, nil)
	descSinkErrors = prometheus.NewDesc("janusbridge_sink_errors_total",
		"Errors of a sink.", []string{"bridge", "sink"}, nil)
	descSinkDropped = prometheus.NewDesc("janusbridge_sink_dropped_packets_total",
		"Media a sink's full queue discarded.", []string{"bridge", "sink"}, nil)
	descReconnects = prometheus.NewDesc("janusbridge_janus_reconnects_total",
		"Reconnections of the Janus session (claimed or re-created).", nil, nil)
	descJanusUp = prometheus.NewDesc("janusbridge_janus_connected",
		"1 while the Janus session's transport is up.", nil, nil)
	descICERestarts = prometheus.NewDesc("janusbridge_ice_restarts_total",
		"ICE restarts of a bridge.", []string{"bridge"}, nil)
	descRenegotiations = prometheus.NewDesc("janusbridge_renegotiations_total",
		"Renegotiations of a bridge after its first negotiation.", []string{"bridge"}, nil)
	descSourceDropped = prometheus.NewDesc("janusbridge_source_dropped_packets_total",
		"Datagrams a send bridge's RTP sources dropped, by reason: malformed, wrong_payload_type, foreign_ssrc (stray RTP or RTCP), rtcp_malformed.",
		[]string{"bridge", "reason"}, nil)
	descJanusDropped = prometheus.NewDesc("janusbridge_janus_dropped_messages_total",
		"Messages from Janus dropped: bad (undecodable), unrouted (for no session, handle or request of ours) or overflow (a handle's unread events at their limit).",
		[]string{"reason"}, nil)
)

var allStates = []string{bridge.StateStarting, bridge.StateNegotiating, bridge.StateUp, bridge.StateWaiting,
	bridge.StateReconnecting, bridge.StateFailed, bridge.StateDone, bridge.StateStopped}

// collector reads the bridges' snapshots at scrape time: nothing is counted
// per packet for the metrics.
type collector struct{ d *bridge.Daemon }

// Describe sends every metric's description.
func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descState, descPackets, descBytes, descLost, descNACK, descPLI,
		descSinkBytes, descSinkErrors, descSinkDropped, descReconnects, descJanusUp, descICERestarts, descRenegotiations,
		descSourceDropped, descJanusDropped} {
		ch <- d
	}
}

// Collect sends the current values. Label sets that repeat (a VideoRoom
// bridge's sinks, one per publisher) are summed.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	ch <- prometheus.MustNewConstMetric(descReconnects, prometheus.CounterValue, float64(c.d.JanusReconnects()))
	ch <- prometheus.MustNewConstMetric(descJanusUp, prometheus.GaugeValue, boolValue(c.d.JanusConnected()))
	js := c.d.JanusStats()
	counter(descJanusDropped, js.BadMessages, "bad")
	counter(descJanusDropped, js.Unrouted, "unrouted")
	counter(descJanusDropped, js.Overflow, "overflow")
	for _, b := range c.d.Bridges() {
		name := b.Name()
		state := b.Status().State
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, boolValue(state == bridge.StateUp), name)
		for _, s := range allStates {
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, boolValue(state == s), name, s)
		}
		st := b.Stats()
		counter(descICERestarts, st.ICERestarts, name)
		counter(descRenegotiations, st.Renegotiations, name)
		if d := st.SourceDropped; d != nil {
			counter(descSourceDropped, d.Malformed, name, "malformed")
			counter(descSourceDropped, d.WrongPayloadType, name, "wrong_payload_type")
			counter(descSourceDropped, d.ForeignSSRC, name, "foreign_ssrc")
			counter(descSourceDropped, d.RTCPMalformed, name, "rtcp_malformed")
		}
		type trackKey struct{ feed, mid, kind, dir string }
		type trackSum struct{ packets, bytes, lost, nacks, plis uint64 }
		tracks := map[trackKey]*trackSum{}
		var order []trackKey
		for _, t := range st.Tracks {
			dir := t.Direction
			if dir == "" {
				dir = "in"
			}
			k := trackKey{t.Feed, t.MID, t.Kind, dir}
			s := tracks[k]
			if s == nil {
				s = &trackSum{}
				tracks[k] = s
				order = append(order, k)
			}
			s.packets += t.Packets
			s.bytes += t.Bytes
			s.lost += t.Lost
			s.nacks += t.NACKs
			s.plis += t.PLIs
		}
		// lost has no kind nor direction label, nack and pli no kind label:
		// their tracks are summed by the labels they have.
		type midKey struct{ feed, mid, dir string }
		lost := map[[2]string]uint64{}
		var lostOrder [][2]string
		rtcp := map[midKey]*trackSum{}
		var rtcpOrder []midKey
		for _, k := range order {
			s := tracks[k]
			counter(descPackets, s.packets, name, k.feed, k.mid, k.kind, k.dir)
			counter(descBytes, s.bytes, name, k.feed, k.mid, k.kind, k.dir)
			lk := [2]string{k.feed, k.mid}
			if _, ok := lost[lk]; !ok {
				lostOrder = append(lostOrder, lk)
			}
			lost[lk] += s.lost
			mk := midKey{k.feed, k.mid, k.dir}
			r := rtcp[mk]
			if r == nil {
				r = &trackSum{}
				rtcp[mk] = r
				rtcpOrder = append(rtcpOrder, mk)
			}
			r.nacks += s.nacks
			r.plis += s.plis
		}
		for _, lk := range lostOrder {
			counter(descLost, lost[lk], name, lk[0], lk[1])
		}
		for _, mk := range rtcpOrder {
			counter(descNACK, rtcp[mk].nacks, name, mk.feed, mk.mid, mk.dir)
			counter(descPLI, rtcp[mk].plis, name, mk.feed, mk.mid, mk.dir)
		}
		type sinkSum struct{ bytes, errors, dropped uint64 }
		sinksBy := map[string]*sinkSum{}
		var sinkOrder []string
		for _, sk := range st.Sinks {
			s := sinksBy[sk.Name]
			if s == nil {
				s = &sinkSum{}
				sinksBy[sk.Name] = s
				sinkOrder = append(sinkOrder, sk.Name)
			}
			s.bytes += sk.Bytes
			s.errors += sk.Errors
			s.dropped += sk.Dropped
		}
		for _, n := range sinkOrder {
			s := sinksBy[n]
			counter(descSinkBytes, s.bytes, name, n)
			counter(descSinkErrors, s.errors, name, n)
			counter(descSinkDropped, s.dropped, name, n)
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
