package sim

import _ "embed"

// MeasureScenario is sim/scenarios/measure.toml: the workload `sealnet
// testnet load` drives when given none.
//
//go:embed scenarios/measure.toml
var MeasureScenario string
