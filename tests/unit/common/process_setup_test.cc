// Thread priorities (common/process_setup.h): a thread lowered, and a
// thread made by it and lowered again, end the same number of nice steps
// below the main thread (gRPC's pools make threads from their threads).
#include "common/process_setup.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

#include "gtest/gtest.h"

namespace netvigil {
namespace {

int NiceOfThisThread() {
  return getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
}

TEST(ProcessSetupTest, LoweringIsRelativeToTheMainThreadAndDoesNotCompound) {
  const int main_nice = NiceOfThisThread();
  ASSERT_LE(main_nice, 10) << "run the test at nice 10 or less";
  int first = 0, second = 0, third = 0;
  std::thread t([&] {
    LowerThisThreadsPriority(5);
    first = NiceOfThisThread();
    std::thread inner([&] {
      second = NiceOfThisThread();  // inherited
      LowerThisThreadsPriority(5);
      third = NiceOfThisThread();
    });
    inner.join();
  });
  t.join();
  EXPECT_EQ(first, main_nice + 5);
  EXPECT_EQ(second, main_nice + 5);
  EXPECT_EQ(third, main_nice + 5) << "lowered again from its inherited nice";
  EXPECT_EQ(NiceOfThisThread(), main_nice) << "the caller's thread only";
}

}  // namespace
}  // namespace netvigil
