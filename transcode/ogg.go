package transcode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/janusbridge/janusbridge/media"
)

// A minimal Ogg (RFC 3533) writer and reader for one Opus stream (RFC 7845)
// on the pipes of the ffmpeg child.

// oggWriter writes one logical stream, one packet per page, into a reused
// buffer.
type oggWriter struct {
	w      io.Writer
	serial uint32
	seq    uint32
	buf    []byte
}

// Ogg page header type flags.
const (
	oggContinued = 0x01
	oggBOS       = 0x02
)

// page writes packet (at most 255*255-1 bytes) as one page.
func (o *oggWriter) page(packet []byte, granule int64, flags byte) error {
	if len(packet) >= 255*255 {
		return fmt.Errorf("ogg: packet of %d bytes is too long for one page", len(packet))
	}
	nseg := len(packet)/255 + 1
	b := append(o.buf[:0], "OggS"...)
	b = append(b, 0, flags)
	b = binary.LittleEndian.AppendUint64(b, uint64(granule))
	b = binary.LittleEndian.AppendUint32(b, o.serial)
	b = binary.LittleEndian.AppendUint32(b, o.seq)
	b = append(b, 0, 0, 0, 0, byte(nseg))
	for i := 0; i < nseg-1; i++ {
		b = append(b, 255)
	}
	b = append(b, byte(len(packet)%255))
	b = append(b, packet...)
	binary.LittleEndian.PutUint32(b[22:], media.OggChecksum(b))
	o.buf = b
	o.seq++
	_, err := o.w.Write(b)
	return err
}

// opusHeaders writes OpusHead (pre-skip 0: the packets are mid-stream, their
// timestamps already account for the sender's delay) and OpusTags.
func (o *oggWriter) opusHeaders(channels int) error {
	head := []byte("OpusHead")
	head = append(head, 1, byte(channels), 0, 0)         // version, channels, pre-skip
	head = binary.LittleEndian.AppendUint32(head, 48000) // input rate
	head = append(head, 0, 0, 0)                         // gain, mapping family 0
	if err := o.page(head, 0, oggBOS); err != nil {
		return err
	}
	tags := []byte("OpusTags")
	tags = binary.LittleEndian.AppendUint32(tags, 11)
	tags = append(tags, "janusbridge"...)
	tags = binary.LittleEndian.AppendUint32(tags, 0)
	return o.page(tags, 0, 0)
}

// oggReader reads the packets of the first logical stream of an Ogg
// stream, reusing its buffers.
type oggReader struct {
	r      io.Reader
	serial uint32
	seen   bool
	hdr    [27]byte
	segs   [255]byte
	buf    []byte // storage of the current page's body
	page   []byte // what is left of the current page's body
	lace   []byte // the current page's lacing values not yet consumed
	packet []byte // the packet being assembled
}

var errOggSync = errors.New("ogg: lost page sync")

// next returns the next whole packet; it is valid until the next call.
func (o *oggReader) next() ([]byte, error) {
	o.packet = o.packet[:0]
	for {
		for len(o.lace) > 0 {
			n := int(o.lace[0])
			o.lace = o.lace[1:]
			o.packet = append(o.packet, o.page[:n]...)
			o.page = o.page[n:]
			if n < 255 {
				return o.packet, nil
			}
		}
		if err := o.readPage(); err != nil {
			return nil, err
		}
	}
}

func (o *oggReader) readPage() error {
	for {
		if _, err := io.ReadFull(o.r, o.hdr[:]); err != nil {
			return err
		}
		if string(o.hdr[:4]) != "OggS" || o.hdr[4] != 0 {
			return errOggSync
		}
		nseg := int(o.hdr[26])
		if _, err := io.ReadFull(o.r, o.segs[:nseg]); err != nil {
			return err
		}
		size := 0
		for _, s := range o.segs[:nseg] {
			size += int(s)
		}
		if cap(o.buf) < size {
			o.buf = make([]byte, max(size, 4096))
		}
		body := o.buf[:size]
		if _, err := io.ReadFull(o.r, body); err != nil {
			return err
		}
		serial := binary.LittleEndian.Uint32(o.hdr[14:])
		if !o.seen {
			o.serial, o.seen = serial, true
		}
		if serial != o.serial {
			continue // another logical stream
		}
		if o.hdr[5]&oggContinued == 0 {
			o.packet = o.packet[:0] // a packet left open before is abandoned
		}
		o.page = body
		o.lace = o.segs[:nseg]
		return nil
	}
}

// opusPreSkip returns the pre-skip of an OpusHead packet.
func opusPreSkip(head []byte) (int, error) {
	if len(head) < 19 || string(head[:8]) != "OpusHead" {
		return 0, errors.New("ogg: first packet is not an OpusHead")
	}
	return int(binary.LittleEndian.Uint16(head[10:])), nil
}
