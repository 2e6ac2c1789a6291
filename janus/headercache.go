package janus

import (
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// headerCacheFactory builds the innermost interceptor of the receive path.
// The interceptors above it (NACK generator, receiver reports) each read
// the RTP header of every packet through Attributes.GetRTPHeader, which,
// given the nil attributes pion's TrackRemote passes in, allocates a map and
// a header per packet. This one parses the header once per packet into a
// header and a map kept per stream, so the receive path does not allocate.
// The interceptors above read the header during their Read and keep no
// reference to it.
type headerCacheFactory struct{}

// NewInterceptor implements interceptor.Factory.
func (headerCacheFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &headerCache{}, nil
}

// headerCache is the interceptor headerCacheFactory builds.
type headerCache struct{ interceptor.NoOp }

// rtpHeaderKey is the key under which interceptor.Attributes caches a
// parsed RTP header. The interceptor package does not export it; one call
// of GetRTPHeader on a fresh map reveals it.
var rtpHeaderKey = func() any {
	a := interceptor.Attributes{}
	minimal := []byte{0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if _, err := a.GetRTPHeader(minimal); err != nil {
		panic("janus: RTP header cache: " + err.Error())
	}
	for k := range a {
		return k
	}
	panic("janus: RTP header cache: interceptor.Attributes caches no header")
}()

// BindRemoteStream implements interceptor.Interceptor. Reads of one stream
// come from one goroutine (the track's reader), so the header and the map
// are reused without locking.
func (*headerCache) BindRemoteStream(_ *interceptor.StreamInfo, reader interceptor.RTPReader) interceptor.RTPReader {
	var header rtp.Header
	attrs := interceptor.Attributes{}
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := reader.Read(b, a)
		if err != nil || a != nil {
			return n, a, err
		}
		if _, err := header.Unmarshal(b[:n]); err != nil {
			delete(attrs, rtpHeaderKey)
			return n, attrs, nil // the interceptors above report the error
		}
		attrs[rtpHeaderKey] = &header
		return n, attrs, nil
	})
}
