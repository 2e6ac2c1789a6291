package janus

import (
	"context"
	"encoding/json"
	"fmt"
)

// ServerInfo is the reply to an "info" request: what a Janus server runs.
type ServerInfo struct {
	Name          string `json:"name"`
	Version       int    `json:"version"`
	VersionString string `json:"version_string"`
	Author        string `json:"author"`
	// Tokens, APISecret: whether the server requires them.
	APISecret             bool                  `json:"api_secret"`
	AuthToken             bool                  `json:"auth_token"`
	SessionTimeout        int                   `json:"session-timeout"`
	ReclaimSessionTimeout int                   `json:"reclaim-session-timeout"`
	Transports            map[string]ModuleInfo `json:"transports"`
	Plugins               map[string]ModuleInfo `json:"plugins"`
}

// ModuleInfo describes a transport or plugin module of a server.
type ModuleInfo struct {
	Name          string `json:"name"`
	Version       int    `json:"version"`
	VersionString string `json:"version_string"`
	Description   string `json:"description"`
}

// Info asks the session's server what it runs.
func (s *Session) Info(ctx context.Context) (*ServerInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	t, _, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	// info is a request of the server, not of the session.
	reply, err := s.roundTrip(ctx, t, 0, 0, map[string]any{"janus": "info"})
	if err != nil {
		return nil, fmt.Errorf("janus: info: %w", err)
	}
	return decodeInfo(reply)
}

// GetInfo asks one server what it runs, without creating a session. The
// credentials of opts are sent; its Servers are ignored.
func GetInfo(ctx context.Context, server string, opts Options) (*ServerInfo, error) {
	opts.setDefaults()
	ctx, cancel := context.WithTimeout(ctx, opts.RequestTimeout)
	defer cancel()
	t, err := dialTransport(ctx, server, &opts, func(*Message) {}, func(error) {})
	if err != nil {
		return nil, err
	}
	defer t.close()
	s := &Session{opts: opts}
	reply, err := s.roundTrip(ctx, t, 0, 0, map[string]any{"janus": "info"})
	if err != nil {
		return nil, fmt.Errorf("janus: %s: info: %w", server, err)
	}
	return decodeInfo(reply)
}

func decodeInfo(reply *Message) (*ServerInfo, error) {
	if reply.Janus != "server_info" {
		return nil, fmt.Errorf("janus: info: unexpected %q reply", reply.Janus)
	}
	info := new(ServerInfo)
	if err := json.Unmarshal(reply.Raw, info); err != nil {
		return nil, fmt.Errorf("janus: info: %w", err)
	}
	return info, nil
}
