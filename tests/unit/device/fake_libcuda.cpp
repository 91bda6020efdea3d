// An empty stand-in for the NVIDIA driver's libcuda.so.1, built as tests/fake-nvidia-driver/
// libcuda.so.1: loading it succeeds (so the program thinks a driver is present), and the CUDA
// runtime, finding none of the driver's functions in it, reports no usable device.
extern "C" {
int autotrain_fake_nvidia_driver = 1;
}
