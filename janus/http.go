package janus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// httpTransport speaks Janus's REST API: a POST per request, and a long-poll
// GET per session that brings the events.
type httpTransport struct {
	base    string // e.g. http://127.0.0.1:8088/janus, no trailing slash
	client  *http.Client
	own     *http.Transport // non-nil when we made client and must close it
	creds   url.Values
	deliver func(*Message)
	bad     func(error)
	ctx     context.Context // cancelled by close; parent of the long poll
	cancel  context.CancelFunc

	pollTimeout time.Duration // Options.LongPollTimeout

	wg       sync.WaitGroup
	pollOnce sync.Once
	doneCh   chan struct{}
	errOnce  sync.Once
	failErr  error
}

func newHTTP(ctx context.Context, server string, o *Options, deliver func(*Message), bad func(error)) (*httpTransport, error) {
	t := &httpTransport{
		base:        strings.TrimRight(server, "/"),
		creds:       url.Values{},
		deliver:     deliver,
		bad:         bad,
		pollTimeout: o.LongPollTimeout,
		doneCh:      make(chan struct{}),
	}
	if o.APISecret != "" {
		t.creds.Set("apisecret", o.APISecret)
	}
	if o.Token != "" {
		t.creds.Set("token", o.Token)
	}
	if o.HTTPClient != nil {
		t.client = o.HTTPClient
	} else {
		t.own = &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		}
		t.client = &http.Client{Transport: t.own}
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	// An HTTP server has no connection to open: check that it answers as
	// Janus does, so failover moves on from a dead or wrong server.
	ping := map[string]any{"janus": "ping", "transaction": "ping"}
	if o.APISecret != "" {
		ping["apisecret"] = o.APISecret
	}
	if _, err := t.roundTrip(ctx, 0, 0, ping); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

func (t *httpTransport) roundTrip(ctx context.Context, sessionID, handleID uint64, req map[string]any) (*Message, error) {
	path := t.base
	if sessionID != 0 {
		path += "/" + strconv.FormatUint(sessionID, 10)
		if handleID != 0 {
			path += "/" + strconv.FormatUint(handleID, 10)
		}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("janus: encode request: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("janus: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	msgs, err := t.do(hreq)
	if errors.Is(err, ErrBadMessage) {
		t.bad(err)
	}
	if err != nil {
		if ctx.Err() == nil && isConnError(err) {
			t.fail(err)
		}
		return nil, err
	}
	if len(msgs) != 1 {
		return nil, fmt.Errorf("janus: %s: expected one reply, got %d", t.base, len(msgs))
	}
	return msgs[0], nil
}

// do runs one HTTP exchange and decodes its body. Janus answers errors with
// status 200 and a JSON error, so any other status is a transport problem.
func (t *httpTransport) do(req *http.Request) ([]*Message, error) {
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("janus: %s: %w", t.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMessageSize+1))
	if err != nil {
		return nil, fmt.Errorf("janus: %s: read reply: %w", t.base, err)
	}
	if len(data) > maxMessageSize {
		return nil, fmt.Errorf("janus: %s: reply larger than %d bytes", t.base, maxMessageSize)
	}
	if resp.StatusCode != http.StatusOK {
		// Janus answers some errors (e.g. unknown session on the poll) with a
		// JSON error body and a non-200 status: prefer the JSON.
		if msgs, err := decodeMessages(data); err == nil && len(msgs) == 1 && msgs[0].Error != nil {
			return msgs, nil
		}
		return nil, &httpStatusError{url: t.base, status: resp.Status}
	}
	msgs, err := decodeMessages(data)
	if err != nil {
		return nil, fmt.Errorf("janus: %s: %w", t.base, err)
	}
	return msgs, nil
}

type httpStatusError struct{ url, status string }

func (e *httpStatusError) Error() string { return fmt.Sprintf("janus: %s: HTTP %s", e.url, e.status) }

// isConnError tells whether err means the server cannot be reached (as
// opposed to a bad reply from a reachable server).
func isConnError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

func (t *httpTransport) listen(sessionID uint64) {
	t.pollOnce.Do(func() {
		t.wg.Add(1)
		go t.poll(sessionID)
	})
}

// poll runs the long-poll loop of a session. Janus answers each GET within
// about 30 s, with a keepalive when there is nothing to say; a GET that
// takes longer than Options.LongPollTimeout (a stalled server) fails the transport,
// which the session then replaces. RequestTimeout does not apply.
func (t *httpTransport) poll(sessionID uint64) {
	defer t.wg.Done()
	q := url.Values{}
	for k, v := range t.creds {
		q[k] = v
	}
	q.Set("maxev", "10")
	for t.ctx.Err() == nil {
		q.Set("rid", strconv.FormatInt(time.Now().UnixMilli(), 10))
		ctx, cancel := context.WithTimeout(t.ctx, t.pollTimeout)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet,
			t.base+"/"+strconv.FormatUint(sessionID, 10)+"?"+q.Encode(), nil)
		if err != nil {
			cancel()
			t.fail(fmt.Errorf("janus: %w", err))
			return
		}
		msgs, err := t.do(req)
		timedOut := ctx.Err() != nil
		cancel()
		if err != nil {
			if timedOut && t.ctx.Err() == nil {
				err = fmt.Errorf("janus: %s: long poll not answered within %v: %w", t.base, t.pollTimeout, err)
			}
			if t.ctx.Err() == nil {
				if errors.Is(err, ErrBadMessage) {
					t.bad(err)
					continue // a bad body is dropped, the session lives on
				}
				t.fail(err)
			}
			return
		}
		for _, m := range msgs {
			if m.Janus == "error" && m.Error != nil && m.Error.Code == CodeSessionNotFound {
				t.fail(fmt.Errorf("janus: %s: %w", t.base, m.Error))
				return
			}
			if m.Janus == "keepalive" {
				continue
			}
			t.deliver(m)
		}
	}
}

func (t *httpTransport) fail(err error) {
	t.errOnce.Do(func() {
		t.failErr = err
		close(t.doneCh)
	})
}

func (t *httpTransport) done() <-chan struct{} { return t.doneCh }

func (t *httpTransport) err() error {
	select {
	case <-t.doneCh:
		return t.failErr
	default:
		return nil
	}
}

func (t *httpTransport) server() string { return t.base }

func (t *httpTransport) close() error {
	t.fail(ErrClosed)
	t.cancel()
	t.wg.Wait()
	if t.own != nil {
		t.own.CloseIdleConnections()
	}
	return nil
}
