package janus

import (
	"context"
	"fmt"
	"net/url"
	"strings"
)

// transport is one connection to one Janus server. Requests are JSON objects
// that already carry their transaction and credentials; a transport routes
// the synchronous reply back to the caller and every other message to the
// deliver function it was opened with.
type transport interface {
	// roundTrip sends req (addressed to session and handle, 0 when none)
	// and returns the message that answers it: for HTTP the response body,
	// for WebSocket the first message with the same transaction.
	roundTrip(ctx context.Context, sessionID, handleID uint64, req map[string]any) (*Message, error)
	// listen starts receiving asynchronous messages of the session (HTTP
	// starts its long poll; WebSocket already receives everything).
	listen(sessionID uint64)
	// done is closed when the connection is lost; err then says why.
	done() <-chan struct{}
	err() error
	// close releases the connection and waits for its goroutines.
	close() error
	// server is the URL the transport was opened with.
	server() string
}

// dialTransport opens a transport to server (ws://, wss://, http://, https://).
// deliver receives the messages that answer no pending request; bad is
// told of each message that could not be decoded (it is dropped, or
// returned as the error of the request it answers). Neither may block.
func dialTransport(ctx context.Context, server string, o *Options, deliver func(*Message), bad func(error)) (transport, error) {
	u, err := url.Parse(server)
	if err != nil {
		return nil, fmt.Errorf("janus: server %q: %w", server, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "ws", "wss":
		return dialWS(ctx, server, o, deliver, bad)
	case "http", "https":
		return newHTTP(ctx, server, o, deliver, bad)
	default:
		return nil, fmt.Errorf("janus: server %q: scheme must be ws, wss, http or https", server)
	}
}
