# Old module names and paths -> new ones, for README.md and docs/ (GNU sed):
#   sed -i -f tools/renames.sed README.md docs/*.md
# Longest names first, so a name that is the prefix of another (motion_compare, motion_compare_results)
# cannot clash. Kept commands: python -m deblurlab.{run,report,reference,seeds,export,deblur,perf,
# motion_recipes,kernel} are unchanged (deblur is now a package with __main__; export.py the command
# whose work is in deblur/export.py). Moved commands: deblurlab.backend_check -> training.backend_check,
# deblurlab.cluster -> runtime.cluster, deblurlab.launch -> runtime.launch.

# functions that moved between modules (before the module rules below)
s/deblurlab\.provenance\.footnote\b/deblurlab.core.tables.footnote/g
s/deblurlab\.provenance\.\(cpu_name\|cpu_flags\|cpu_features\)\b/deblurlab.core.host.\1/g
s/deblurlab\.compute\.keras_backend\b/deblurlab.core.host.keras_backend/g
s/deblurlab\.perf\.child\.worker\b/deblurlab.perf.worker.worker/g
s/deblurlab\.perf\.cli\.select_models\b/deblurlab.perf.plans.select_models/g
s/deblurlab\.perf\.engines\._version\b/deblurlab.perf.machine.package_version/g
s/deblurlab\.export\.\([a-z_][a-z_0-9]*\)/deblurlab.deblur.export.\1/g
s/deblurlab\.deblur\.\(read_image\|write_png\|expand_inputs\|deblur_files\|summary_line\|main\|deblur_frame_as_user\)\b/deblurlab.deblur.cli.\1/g

# dotted module names
s/\([^.[:alnum:]_]\|^\)deblurlab\.motion_compare_results\b/\1deblurlab.studies.motion.compare_results/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.comparison_results\b/\1deblurlab.studies.comparison.results/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.diagram_blocks\b/\1deblurlab.outputs.diagram_blocks/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.cifar_analysis\b/\1deblurlab.studies.cifar.analysis/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.motion_results\b/\1deblurlab.studies.motion.results/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.motion_figures\b/\1deblurlab.studies.motion.figures/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.motion_compare\b/\1deblurlab.studies.motion.compare/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.patch_analysis\b/\1deblurlab.studies.motion.patch_analysis/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.backend_check\b/\1deblurlab.training.backend_check/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.deblur_models\b/\1deblurlab.deblur.networks/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.cifar_results\b/\1deblurlab.studies.cifar.results/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.onnx_convert\b/\1deblurlab.training.onnx_convert/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.motion_study\b/\1deblurlab.studies.motion.study/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.collectives\b/\1deblurlab.runtime.collectives/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.checkpoints\b/\1deblurlab.training.checkpoints/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.onnx_engine\b/\1deblurlab.training.onnx_engine/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.cifar_study\b/\1deblurlab.studies.cifar.study/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.provenance\b/\1deblurlab.runtime.provenance/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.keras_mwms\b/\1deblurlab.runtime.keras_mwms/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.comparison\b/\1deblurlab.studies.comparison.study/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.inference\b/\1deblurlab.training.inference/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.baselines\b/\1deblurlab.studies.comparison.baselines/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.profiles\b/\1deblurlab.training.profiles/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.diagrams\b/\1deblurlab.outputs.diagrams/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.metrics\b/\1deblurlab.core.metrics/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.results\b/\1deblurlab.core.results/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.compute\b/\1deblurlab.runtime.compute/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.cluster\b/\1deblurlab.runtime.cluster/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.figures\b/\1deblurlab.outputs.figures/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.tables\b/\1deblurlab.core.tables/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.launch\b/\1deblurlab.runtime.launch/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.losses\b/\1deblurlab.training.losses/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.paths\b/\1deblurlab.core.paths/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.stats\b/\1deblurlab.core.stats/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.train\b/\1deblurlab.training.train/g
s/\([^.[:alnum:]_]\|^\)deblurlab\.zoo\b/\1deblurlab.training.zoo/g

# file paths (lib/deblurlab/old.py, deblurlab/old.py)
s#deblurlab/motion_compare_results\.py\b#deblurlab/studies/motion/compare_results.py#g
s#deblurlab/comparison_results\.py\b#deblurlab/studies/comparison/results.py#g
s#deblurlab/diagram_blocks\.py\b#deblurlab/outputs/diagram_blocks.py#g
s#deblurlab/cifar_analysis\.py\b#deblurlab/studies/cifar/analysis.py#g
s#deblurlab/motion_results\.py\b#deblurlab/studies/motion/results.py#g
s#deblurlab/motion_figures\.py\b#deblurlab/studies/motion/figures.py#g
s#deblurlab/motion_compare\.py\b#deblurlab/studies/motion/compare.py#g
s#deblurlab/patch_analysis\.py\b#deblurlab/studies/motion/patch_analysis.py#g
s#deblurlab/backend_check\.py\b#deblurlab/training/backend_check.py#g
s#deblurlab/deblur_models\.py\b#deblurlab/deblur/networks.py#g
s#deblurlab/cifar_results\.py\b#deblurlab/studies/cifar/results.py#g
s#deblurlab/onnx_convert\.py\b#deblurlab/training/onnx_convert.py#g
s#deblurlab/motion_study\.py\b#deblurlab/studies/motion/study.py#g
s#deblurlab/collectives\.py\b#deblurlab/runtime/collectives.py#g
s#deblurlab/checkpoints\.py\b#deblurlab/training/checkpoints.py#g
s#deblurlab/onnx_engine\.py\b#deblurlab/training/onnx_engine.py#g
s#deblurlab/cifar_study\.py\b#deblurlab/studies/cifar/study.py#g
s#deblurlab/provenance\.py\b#deblurlab/runtime/provenance.py#g
s#deblurlab/keras_mwms\.py\b#deblurlab/runtime/keras_mwms.py#g
s#deblurlab/comparison\.py\b#deblurlab/studies/comparison/study.py#g
s#deblurlab/inference\.py\b#deblurlab/training/inference.py#g
s#deblurlab/baselines\.py\b#deblurlab/studies/comparison/baselines.py#g
s#deblurlab/profiles\.py\b#deblurlab/training/profiles.py#g
s#deblurlab/diagrams\.py\b#deblurlab/outputs/diagrams.py#g
s#deblurlab/metrics\.py\b#deblurlab/core/metrics.py#g
s#deblurlab/results\.py\b#deblurlab/core/results.py#g
s#deblurlab/compute\.py\b#deblurlab/runtime/compute.py#g
s#deblurlab/cluster\.py\b#deblurlab/runtime/cluster.py#g
s#deblurlab/figures\.py\b#deblurlab/outputs/figures.py#g
s#deblurlab/tables\.py\b#deblurlab/core/tables.py#g
s#deblurlab/launch\.py\b#deblurlab/runtime/launch.py#g
s#deblurlab/losses\.py\b#deblurlab/training/losses.py#g
s#deblurlab/deblur\.py\b#deblurlab/deblur/cli.py#g
s#deblurlab/paths\.py\b#deblurlab/core/paths.py#g
s#deblurlab/stats\.py\b#deblurlab/core/stats.py#g
s#deblurlab/train\.py\b#deblurlab/training/train.py#g
s#deblurlab/zoo\.py\b#deblurlab/training/zoo.py#g

# bare file names in prose and the layout block (not after a / or a name character)
s#\(^\|[^/[:alnum:]_]\)motion_compare_results\.py\b#\1studies/motion/compare_results.py#g
s#\(^\|[^/[:alnum:]_]\)comparison_results\.py\b#\1studies/comparison/results.py#g
s#\(^\|[^/[:alnum:]_]\)diagram_blocks\.py\b#\1outputs/diagram_blocks.py#g
s#\(^\|[^/[:alnum:]_]\)cifar_analysis\.py\b#\1studies/cifar/analysis.py#g
s#\(^\|[^/[:alnum:]_]\)motion_results\.py\b#\1studies/motion/results.py#g
s#\(^\|[^/[:alnum:]_]\)motion_figures\.py\b#\1studies/motion/figures.py#g
s#\(^\|[^/[:alnum:]_]\)motion_compare\.py\b#\1studies/motion/compare.py#g
s#\(^\|[^/[:alnum:]_]\)patch_analysis\.py\b#\1studies/motion/patch_analysis.py#g
s#\(^\|[^/[:alnum:]_]\)backend_check\.py\b#\1training/backend_check.py#g
s#\(^\|[^/[:alnum:]_]\)deblur_models\.py\b#\1deblur/networks.py#g
s#\(^\|[^/[:alnum:]_]\)cifar_results\.py\b#\1studies/cifar/results.py#g
s#\(^\|[^/[:alnum:]_]\)onnx_convert\.py\b#\1training/onnx_convert.py#g
s#\(^\|[^/[:alnum:]_]\)motion_study\.py\b#\1studies/motion/study.py#g
s#\(^\|[^/[:alnum:]_]\)collectives\.py\b#\1runtime/collectives.py#g
s#\(^\|[^/[:alnum:]_]\)checkpoints\.py\b#\1training/checkpoints.py#g
s#\(^\|[^/[:alnum:]_]\)onnx_engine\.py\b#\1training/onnx_engine.py#g
s#\(^\|[^/[:alnum:]_]\)cifar_study\.py\b#\1studies/cifar/study.py#g
s#\(^\|[^/[:alnum:]_]\)provenance\.py\b#\1runtime/provenance.py#g
s#\(^\|[^/[:alnum:]_]\)keras_mwms\.py\b#\1runtime/keras_mwms.py#g
s#\(^\|[^/[:alnum:]_]\)comparison\.py\b#\1studies/comparison/study.py#g
s#\(^\|[^/[:alnum:]_]\)inference\.py\b#\1training/inference.py#g
s#\(^\|[^/[:alnum:]_]\)baselines\.py\b#\1studies/comparison/baselines.py#g
s#\(^\|[^/[:alnum:]_]\)profiles\.py\b#\1training/profiles.py#g
s#\(^\|[^/[:alnum:]_]\)diagrams\.py\b#\1outputs/diagrams.py#g
s#\(^\|[^/[:alnum:]_]\)metrics\.py\b#\1core/metrics.py#g
s#\(^\|[^/[:alnum:]_]\)results\.py\b#\1core/results.py#g
s#\(^\|[^/[:alnum:]_]\)compute\.py\b#\1runtime/compute.py#g
s#\(^\|[^/[:alnum:]_]\)cluster\.py\b#\1runtime/cluster.py#g
s#\(^\|[^/[:alnum:]_]\)figures\.py\b#\1outputs/figures.py#g
s#\(^\|[^/[:alnum:]_]\)tables\.py\b#\1core/tables.py#g
s#\(^\|[^/[:alnum:]_]\)launch\.py\b#\1runtime/launch.py#g
s#\(^\|[^/[:alnum:]_]\)losses\.py\b#\1training/losses.py#g
s#\(^\|[^/[:alnum:]_]\)deblur\.py\b#\1deblur/cli.py#g
s#\(^\|[^/[:alnum:]_]\)paths\.py\b#\1core/paths.py#g
s#\(^\|[^/[:alnum:]_]\)stats\.py\b#\1core/stats.py#g
s#\(^\|[^/[:alnum:]_]\)train\.py\b#\1training/train.py#g
s#\(^\|[^/[:alnum:]_]\)zoo\.py\b#\1training/zoo.py#g
