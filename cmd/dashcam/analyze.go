package main

import (
	"context"
	"io"

	"github.com/spf13/pflag"

	"github.com/dashcam-dev/dashcam/analyze"
)

func init() {
	commands = append(commands, &command{
		name:    "analyze",
		summary: "summarize a bundle, offline",
		usage:   "dashcam analyze BUNDLE [--format text|json|markdown]",
		example: `dashcam analyze dashcam-web1-payment.service-20261128T120000Z-manual.tar.zst
dashcam analyze --format markdown BUNDLE > ticket.md
dashcam analyze --format json BUNDLE | jq '.states'`,
		flags: analyzeFlags,
	})
}

func analyzeFlags(fs *pflag.FlagSet) func(context.Context, []string, io.Writer) error {
	format := fs.StringP("format", "f", "text", "output `FORMAT`: text, json or markdown")
	return func(_ context.Context, args []string, out io.Writer) error {
		if len(args) != 1 {
			return usageErrorf("analyze needs exactly one bundle, got %d arguments", len(args)).hint("dashcam analyze FILE.tar.zst")
		}
		write := map[string]func(*analyze.Report, io.Writer) error{
			"text":     (*analyze.Report).WriteText,
			"json":     (*analyze.Report).WriteJSON,
			"markdown": (*analyze.Report).WriteMarkdown,
			"md":       (*analyze.Report).WriteMarkdown,
		}[*format]
		if write == nil {
			return usageErrorf("unknown --format %q", *format).hint("use text, json or markdown")
		}
		rep, err := analyze.Open(args[0])
		if err != nil {
			return failure(err)
		}
		if err := write(rep, out); err != nil {
			return failure(err)
		}
		return nil
	}
}
