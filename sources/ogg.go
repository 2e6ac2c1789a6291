package sources

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/janusbridge/janusbridge/media"
)

// oggDemuxer reads the first Opus stream of an Ogg file (RFC 7845): pages
// checked against their CRC, packets reassembled across pages, OpusHead
// and OpusTags skipped, each audio packet timed by the durations of the
// packets before it.
type oggDemuxer struct {
	r      io.ReadSeeker
	br     *bufio.Reader
	path   string
	track  fileTrack
	serial uint32
	found  bool // serial is the Opus stream's

	off      int64 // file offset of the next page
	page     []byte
	segs     []byte // lacing values of the current page left to read
	body     []byte // body of the current page left to read
	pageOff  int64
	packet   []byte // packet being reassembled
	packets  int    // packets of the stream so far (0, 1: headers)
	t        time.Duration
	checksum [4]byte
}

func newOgg(r io.ReadSeeker, path string) (*oggDemuxer, error) {
	d := &oggDemuxer{r: r, br: bufio.NewReaderSize(r, 64<<10), path: path}
	if err := d.rewind(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *oggDemuxer) tracks() []fileTrack { return []fileTrack{d.track} }

// rewind goes back to the start and reads the Opus headers again.
func (d *oggDemuxer) rewind() error {
	if _, err := d.r.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("%s: %w", d.path, err)
	}
	d.br.Reset(d.r)
	d.off, d.segs, d.body, d.packet, d.packets, d.t, d.found = 0, nil, nil, d.packet[:0], 0, 0, false
	for d.packets < 2 {
		p, err := d.nextPacket()
		if err == io.EOF {
			return errAt(d.path, d.off, "no Opus stream (OpusHead and OpusTags)")
		}
		if err != nil {
			return err
		}
		if d.packets == 0 {
			if len(p) < 19 || !bytes.HasPrefix(p, []byte("OpusHead")) {
				return errAt(d.path, d.pageOff, "not an Ogg Opus stream")
			}
			d.track = fileTrack{codec: media.Opus, channels: int(p[9])}
		}
		d.packets++
	}
	return nil
}

// readPage reads the next page of the file (any stream).
func (d *oggDemuxer) readPage() (serial uint32, bos bool, err error) {
	var h [27]byte
	n, err := io.ReadFull(d.br, h[:])
	if n == 0 && err == io.EOF {
		return 0, false, io.EOF
	}
	if err != nil {
		return 0, false, errAt(d.path, d.off, "Ogg page header: %v", truncated(err))
	}
	if string(h[:4]) != "OggS" || h[4] != 0 {
		return 0, false, errAt(d.path, d.off, "not an Ogg page")
	}
	nseg := int(h[26])
	need := 27 + nseg
	if cap(d.page) < need+255*255 {
		d.page = make([]byte, 0, 27+255+255*255)
	}
	d.page = append(d.page[:0], h[:]...)
	d.page = d.page[:need]
	if _, err := io.ReadFull(d.br, d.page[27:need]); err != nil {
		return 0, false, errAt(d.path, d.off, "Ogg segment table: %v", truncated(err))
	}
	size := 0
	for _, l := range d.page[27:need] {
		size += int(l)
	}
	d.page = d.page[:need+size]
	if _, err := io.ReadFull(d.br, d.page[need:]); err != nil {
		return 0, false, errAt(d.path, d.off, "Ogg page body of %d bytes: %v", size, truncated(err))
	}
	want := binary.LittleEndian.Uint32(d.page[22:])
	copy(d.checksum[:], d.page[22:26])
	clear(d.page[22:26])
	got := media.OggChecksum(d.page)
	copy(d.page[22:26], d.checksum[:])
	if got != want {
		return 0, false, errAt(d.path, d.off, "Ogg page checksum mismatch")
	}
	d.pageOff = d.off
	d.off += int64(len(d.page))
	d.segs = d.page[27:need]
	d.body = d.page[need:]
	return binary.LittleEndian.Uint32(h[14:]), h[5]&0x02 != 0, nil
}

// nextPacket returns the next whole packet of the Opus stream, valid until
// the next call.
func (d *oggDemuxer) nextPacket() ([]byte, error) {
	d.packet = d.packet[:0]
	for {
		for len(d.segs) > 0 {
			l := int(d.segs[0])
			d.segs = d.segs[1:]
			d.packet = append(d.packet, d.body[:l]...)
			d.body = d.body[l:]
			if l < 255 {
				return d.packet, nil
			}
			if len(d.packet) > maxFrameSize {
				return nil, errAt(d.path, d.pageOff, "Ogg packet larger than %d bytes", maxFrameSize)
			}
		}
		for {
			serial, bos, err := d.readPage()
			if err == io.EOF {
				return nil, io.EOF
			}
			if err != nil {
				return nil, err
			}
			if !d.found && bos && bytes.HasPrefix(d.body, []byte("OpusHead")) {
				d.serial, d.found = serial, true
			}
			if d.found && serial == d.serial {
				break
			}
		}
	}
}

func (d *oggDemuxer) next() (frame, error) {
	for {
		p, err := d.nextPacket()
		if err != nil {
			return frame{}, err
		}
		if len(p) == 0 {
			continue
		}
		t := d.t
		d.t += opusDuration(p)
		return frame{track: 0, dts: t, pts: t, keyframe: true, data: p}, nil
	}
}
