"""Reference models (MLP, LeNet-style CNN, small ResNet) built on gpuad.nn; they arrive with the
training issue. Model classes only: no training loops, no argument parsing."""
