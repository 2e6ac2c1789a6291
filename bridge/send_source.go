package bridge

import (
	"fmt"
	"log/slog"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/media"
	"github.com/janusbridge/janusbridge/sources"
)

// sourceSupported says whether this build has the source type of cfg.
func sourceSupported(cfg *config.Source) error {
	if cfg == nil {
		return fmt.Errorf("no source")
	}
	switch cfg.Type {
	case config.SourceRTP, config.SourceFile, config.SourceRTMP:
		return nil
	}
	return fmt.Errorf("%s sources are not supported yet", cfg.Type)
}

// openSource makes the source of cfg.
func openSource(cfg *config.Source, log *slog.Logger) (media.Source, error) {
	if err := sourceSupported(cfg); err != nil {
		return nil, err
	}
	switch cfg.Type {
	case config.SourceRTP:
		return sources.NewRTP(cfg, log.With("source", cfg.Type))
	case config.SourceFile:
		return sources.NewFile(cfg, log.With("source", cfg.Type))
	case config.SourceRTMP:
		return sources.NewRTMP(cfg, log)
	}
	return nil, fmt.Errorf("%s sources are not supported yet", cfg.Type)
}
