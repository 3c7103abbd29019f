import gpuad.testing.strict as strict
import runpy, sys
sys.argv = ["t2", "strict"]
runpy.run_path("t2_scratch.py")
