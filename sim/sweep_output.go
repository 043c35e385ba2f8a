package sim

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
)

// The sweep's files are compared byte for byte between runs, so every
// field is written in a fixed order: points in grid order, runs in seed
// order, figures in the order of metrics.

type jsonSweep struct {
	Scenario string      `json:"scenario"`
	BaseSeed uint64      `json:"base_seed"`
	Seeds    int         `json:"seeds"`
	Params   []string    `json:"params"`
	Metrics  []string    `json:"metrics"`
	Points   []jsonPoint `json:"points"`
}

type jsonPoint struct {
	Params    []jsonParam       `json:"params"`
	Aggregate json.RawMessage   `json:"aggregate"`
	Runs      []json.RawMessage `json:"runs"`
}

type jsonParam struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

type jsonStat struct {
	Mean *float64 `json:"mean"` // null: no run had the figure
	CI95 *float64 `json:"ci95"` // null: fewer than two runs had it
	N    int      `json:"n"`
}

// WriteJSON writes every point with its parameters, its aggregates and
// each seed's Result (as Result.WriteJSON writes it), indented.
func (s *SweepResult) WriteJSON(w io.Writer) error {
	out := jsonSweep{Scenario: s.Scenario, BaseSeed: s.BaseSeed, Seeds: s.Seeds, Params: s.Keys, Points: []jsonPoint{}}
	if out.Params == nil {
		out.Params = []string{}
	}
	for _, m := range metrics {
		out.Metrics = append(out.Metrics, m.name)
	}
	for _, p := range s.Points {
		jp := jsonPoint{Params: []jsonParam{}}
		for _, pv := range p.Params {
			jp.Params = append(jp.Params, jsonParam{Key: pv.Key, Value: jsonValue(pv)})
		}
		agg, err := aggregateJSON(&p.Aggregate)
		if err != nil {
			return err
		}
		jp.Aggregate = agg
		for _, r := range p.Runs {
			var b bytes.Buffer
			if err := r.WriteJSON(&b); err != nil {
				return fmt.Errorf("sim: result of seed %d: %w", r.Seed, err)
			}
			jp.Runs = append(jp.Runs, json.RawMessage(b.Bytes()))
		}
		out.Points = append(out.Points, jp)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("sim: sweep result: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// jsonValue keeps the file's numbers, strings and booleans as JSON
// values, and writes anything else (arrays, dates) as its TOML text.
func jsonValue(p ParamValue) any {
	switch v := p.Value.(type) {
	case string, int64, bool:
		return v
	case float64:
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			return v
		}
	}
	return p.Text
}

// aggregateJSON writes the figures as an object in metrics order (a map
// would be sorted by name).
func aggregateJSON(a *Aggregate) (json.RawMessage, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range metrics {
		st := m.stat(a)
		js := jsonStat{Mean: finite(st.Mean), CI95: finite(st.CI95), N: st.N}
		v, err := json.Marshal(js)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", m.name, v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func finite(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

// CSVHeader is the header row of WriteCSV: the swept keys, then
// <figure>_mean and <figure>_ci95 for each figure.
func (s *SweepResult) CSVHeader() []string {
	row := append([]string{}, s.Keys...)
	for _, m := range metrics {
		row = append(row, m.name+"_mean", m.name+"_ci95")
	}
	return row
}

// WriteCSV writes one row per grid point, in grid order: the parameter
// values as written in the file, then each figure's mean and 95 %
// half-width over seeds; a figure no run had, or a half-width from one
// run, is an empty cell.
func (s *SweepResult) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(s.CSVHeader()); err != nil {
		return err
	}
	for _, p := range s.Points {
		row := make([]string, 0, len(s.Keys)+2*len(metrics))
		for _, pv := range p.Params {
			row = append(row, pv.Text)
		}
		for _, m := range metrics {
			st := m.stat(&p.Aggregate)
			row = append(row, formatFloat(st.Mean), formatFloat(st.CI95))
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func formatFloat(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return ""
	}
	return strconv.FormatFloat(x, 'g', -1, 64)
}
