import SystemSupport
import Testing

@Suite struct LocalCoresTests {
    @Test func aCgroupQuotaCapsTheCores() {
        #expect(LocalCores.effective(online: 4, quota: nil, period: 100000) == 4)
        #expect(LocalCores.effective(online: 4, quota: -1, period: 100000) == 4)
        #expect(LocalCores.effective(online: 4, quota: 25000, period: 100000) == 1)
        #expect(LocalCores.effective(online: 4, quota: 150000, period: 100000) == 2)
        #expect(LocalCores.effective(online: 2, quota: 800000, period: 100000) == 2)
        #expect(LocalCores.effective(online: 0, quota: nil, period: nil) == 1)
    }

    @Test func theQuotaFilesComeFromProcSelfCgroup() {
        // This machine's hybrid hierarchy: the cpu controller on v1, the rest unified.
        let hybrid = "4:memory:/x\n2:cpuacct:/\n1:cpu:/swlab-client\n0::/\n"
        #expect(LocalCores.quotaFiles(procSelfCgroup: hybrid)
                == .v1(quota: "/sys/fs/cgroup/cpu/swlab-client/cpu.cfs_quota_us", period: "/sys/fs/cgroup/cpu/swlab-client/cpu.cfs_period_us"))
        #expect(LocalCores.quotaFiles(procSelfCgroup: "3:cpu,cpuacct:/\n")
                == .v1(quota: "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", period: "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us"))
        #expect(LocalCores.quotaFiles(procSelfCgroup: "0::/swlab-client\n") == .unified(cpuMax: "/sys/fs/cgroup/swlab-client/cpu.max"))
        #expect(LocalCores.quotaFiles(procSelfCgroup: "") == nil)
    }

    @Test func quotasAreReadFromEitherHierarchy() {
        let files = ["/q": "25000\n", "/p": "100000\n", "/max": "50000 100000\n", "/none": "max 100000\n"]
        #expect(LocalCores.quota(.v1(quota: "/q", period: "/p"), read: { files[$0] }) == (25000, 100000))
        #expect(LocalCores.quota(.unified(cpuMax: "/max"), read: { files[$0] }) == (50000, 100000))
        #expect(LocalCores.quota(.unified(cpuMax: "/none"), read: { files[$0] }) == (nil, 100000))
        #expect(LocalCores.quota(.unified(cpuMax: "/absent"), read: { files[$0] }) == (nil, nil))
    }
}
