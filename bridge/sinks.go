package bridge

import (
	"fmt"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/sinks"
)

// sinkSupported says whether this build has the sink type.
func sinkSupported(typ string) bool {
	switch typ {
	case config.SinkWebM, config.SinkMKV, config.SinkOgg, config.SinkMP4, config.SinkRTP:
		return true
	}
	return false
}

// addSink creates the sink of configuration sc.
func (r *recv) addSink(sc config.Sink) error {
	b := r.b
	log := b.log.With("sink", sc.Name)
	if sc.Type == config.SinkRTP {
		s, err := sinks.NewRTP(sinks.RTPConfig{Name: sc.Name, Host: sc.Host, Port: sc.Port, SDP: sc.SDP, Logger: log})
		if err != nil {
			return err
		}
		r.rtps = append(r.rtps, &packetSink{sink: s})
		return nil
	}
	if !sc.IsFile() {
		return fmt.Errorf("%s sinks are not supported yet", sc.Type)
	}
	fc := sinks.NewFileConfig(b.cfg, &sc)
	fc.RequestKeyframe = func() { go r.requestKeyframe(false) } // never block the sink
	fc.Logger = log
	s, err := sinks.NewFile(fc)
	if err != nil {
		return err
	}
	stats := &SinkStats{}
	r.files = append(r.files, newSinkQueue(sc.Name, s, stats, log))
	return nil
}
