import BuildWrappers
import Testing

/// The wrappers' rules, each expectation written out: where the job count comes from, and what happens to the
/// user's own -j, -l, MAKEFLAGS and cmake's parallel level.
@Suite struct JobCountTests {
    static let cluster = JobCountPolicy.Cluster(freeRemoteSlots: 6, helpers: 3)

    @Test func theUsersOwnCountWins() {
        let choice = JobCountPolicy.choose(user: .count(3), configured: (20, "swlaunch.toml:2"), cluster: Self.cluster, localCores: 2)
        #expect(choice == JobCountChoice(jobs: 3, reason: "-j3 as given"))
        #expect(JobCountPolicy.choose(user: .unlimited, configured: nil, cluster: Self.cluster, localCores: 2).jobs == nil)
    }

    @Test func thenTheConfiguredCountThenTheClusterThenTheCores() {
        #expect(JobCountPolicy.choose(user: nil, configured: (20, "swlaunch.toml:2"), cluster: Self.cluster, localCores: 2)
                == JobCountChoice(jobs: 20, reason: "-j20 from jobs.count (swlaunch.toml:2)"))
        #expect(JobCountPolicy.choose(user: nil, configured: nil, cluster: Self.cluster, localCores: 2)
                == JobCountChoice(jobs: 8, reason: "-j8: 6 free remote slots on 3 helper(s) + 2 local core(s)"))
        #expect(JobCountPolicy.choose(user: nil, configured: nil, cluster: JobCountPolicy.Cluster(freeRemoteSlots: 0, helpers: 0), localCores: 4)
                == JobCountChoice(jobs: 4, reason: "-j4: no cluster answered, 4 local core(s)"))
        #expect(JobCountPolicy.choose(user: nil, configured: nil, cluster: nil, localCores: 0).jobs == 1)
    }

    /// A workspace runs one package more than the cores, at least two, so local work overlaps remote compiles.
    @Test func packagesAtOnce() {
        #expect([0, 1, 2, 4].map { JobCountPolicy.packagesAtOnce(localCores: $0) } == [2, 2, 3, 5])
    }
}

@Suite struct MakeArgumentTests {
    @Test(arguments: [
        (["-j8"], UserJobs.count(8)), (["-j", "8", "all"], .count(8)), (["--jobs=5"], .count(5)), (["--jobs", "5"], .count(5)),
        (["-kj12"], .count(12)), (["-j"], .unlimited), (["-j", "all"], .unlimited), (["-j2", "-j6"], .count(6)),
    ])
    func theUsersJobsOnTheCommandLine(_ arguments: [String], _ expected: UserJobs) {
        let make = MakeInvocation(arguments: arguments, makeflags: nil)
        #expect(make.userJobs == expected)
        #expect(make.arguments(jobs: 40) == arguments, "a user's -j is not overridden")
    }

    @Test(arguments: [["all"], ["-C", "src", "install"], ["CFLAGS=-j", "-f", "jobs.mk"], ["--jobserver-style=fifo"], ["--", "-j4"]])
    func noJobsGivenGetTheChosenCount(_ arguments: [String]) {
        let make = MakeInvocation(arguments: arguments, makeflags: nil)
        #expect(make.userJobs == nil)
        #expect(make.arguments(jobs: 9) == ["-j9"] + arguments)
    }

    @Test func anInheritedLoadLimitIsDroppedAndOneOnTheCommandLineKept() {
        // colcon's and a parent make's load limits come through MAKEFLAGS.
        let inherited = MakeInvocation(arguments: ["all"], makeflags: "-l2 -k --no-print-directory")
        #expect(inherited.makeflags == "-k --no-print-directory" && inherited.droppedLoadLimits == ["-l2"])
        let spelled = MakeInvocation(arguments: [], makeflags: "--load-average=2.5 -l 3 --max-load 4 -s")
        #expect(spelled.makeflags == "-s" && spelled.droppedLoadLimits == ["--load-average=2.5", "-l 3", "--max-load 4"])
        let typed = MakeInvocation(arguments: ["-l4", "all"], makeflags: nil)
        #expect(typed.arguments(jobs: 10) == ["-j10", "-l4", "all"])
    }

    @Test func jobsInMakeflagsAreTheUsersAndAJobserverIsJoined() {
        let flags = MakeInvocation(arguments: [], makeflags: "kj3")
        #expect(flags.userJobs == .count(3) && flags.makeflags == "-kj3" && flags.arguments(jobs: 10) == [])
        // A sub-make under a parent's jobserver (make 4.3 pipes, make 4.4 a fifo) adds no -j of its own.
        for auth in ["-j4 --jobserver-auth=3,4", " --jobserver-auth=fifo:/tmp/GMfifo1", "--jobserver-fds=5,6 -j"] {
            let child = MakeInvocation(arguments: ["all"], makeflags: auth)
            #expect(child.joinsJobserver && child.arguments(jobs: 10) == ["all"], "\(auth)")
        }
    }
}

@Suite struct NinjaAndCMakeArgumentTests {
    @Test func ninja() {
        #expect(NinjaInvocation.userJobs(["-C", "build", "-j", "6"]) == .count(6))
        #expect(NinjaInvocation.userJobs(["-j0"]) == .unlimited)
        #expect(NinjaInvocation.arguments(["-C", "build", "-l", "2"], jobs: 12) == ["-j", "12", "-C", "build", "-l", "2"])
        #expect(NinjaInvocation.arguments(["-j3"], jobs: 12) == ["-j3"])
    }

    @Test func cmakeBuild() {
        #expect(CMakeBuildInvocation.arguments(["--build", "out", "--target", "all"], parallelLevel: nil, jobs: 7)
                == ["--build", "out", "--parallel", "7", "--target", "all"])
        #expect(CMakeBuildInvocation.arguments(["--build", "out", "-j", "2"], parallelLevel: nil, jobs: 7) == ["--build", "out", "-j", "2"])
        #expect(CMakeBuildInvocation.arguments(["--build", "out", "--parallel"], parallelLevel: nil, jobs: 7) == ["--build", "out", "--parallel"])
        #expect(CMakeBuildInvocation.userJobs(["--build", "out"], parallelLevel: "5") == .count(5))
        #expect(CMakeBuildInvocation.arguments(["--build", "out"], parallelLevel: "5", jobs: 7) == ["--build", "out"])
        // -j after `--` belongs to the native tool, not to cmake.
        #expect(CMakeBuildInvocation.userJobs(["--build", "out", "--", "-j3"], parallelLevel: nil) == nil)
        #expect(CMakeBuildInvocation.userJobs(["--build", "out", "--parallel=4"], parallelLevel: nil) == .count(4))
    }

    /// Where the wrappers keep their record for `swlaunch ninjalog`.
    @Test func buildFolders() {
        #expect(NinjaInvocation.directory(["-j4", "all"], workingDirectory: "/p") == "/p")
        #expect(NinjaInvocation.directory(["-C", "build", "-C", "sub"], workingDirectory: "/p") == "/p/sub")
        #expect(NinjaInvocation.directory(["-C/abs/out"], workingDirectory: "/p") == "/abs/out")
        #expect(CMakeBuildInvocation.directory(["--build", "out", "-j2"], workingDirectory: "/p") == "/p/out")
        #expect(CMakeBuildInvocation.directory(["-E", "echo"], workingDirectory: "/p") == nil)
        #expect(ColconInvocation(arguments: ["build"], makeflags: nil, parallelLevel: nil).buildBase(workingDirectory: "/ws") == "/ws/build")
        #expect(ColconInvocation(arguments: ["build", "--build-base", "/b"], makeflags: nil, parallelLevel: nil).buildBase(workingDirectory: "/ws") == "/b")
        #expect(ColconInvocation(arguments: ["build", "--build-base=out"], makeflags: nil, parallelLevel: nil).buildBase(workingDirectory: "/ws") == "/ws/out")
    }
}

@Suite struct ColconArgumentTests {
    static let launcher = "/usr/bin/swlaunch"
    static let ours = ["-DCMAKE_C_COMPILER_LAUNCHER=/usr/bin/swlaunch", "-DCMAKE_CXX_COMPILER_LAUNCHER=/usr/bin/swlaunch"]

    @Test func theLauncherJoinsTheUsersCMakeArgumentsAndWorkersAreChosen() {
        let plain = ColconInvocation(arguments: ["build", "--symlink-install"], makeflags: nil, parallelLevel: nil)
        #expect(plain.isBuild && plain.userWorkers == nil && plain.userJobs == nil)
        #expect(plain.arguments(launcher: Self.launcher, workers: 2)
                == ["build", "--parallel-workers", "2", "--symlink-install", "--cmake-args"] + Self.ours)
        // Theirs come after ours (the last -D wins in CMake), in the same --cmake-args.
        let theirs = ColconInvocation(arguments: ["--log-level", "info", "build", "--cmake-args", "-DCMAKE_BUILD_TYPE=Release",
                                                  "--packages-select", "tf"], makeflags: nil, parallelLevel: nil)
        #expect(theirs.isBuild)
        #expect(theirs.arguments(launcher: Self.launcher, workers: 2)
                == ["--log-level", "info", "build", "--parallel-workers", "2", "--cmake-args"] + Self.ours
                   + ["-DCMAKE_BUILD_TYPE=Release", "--packages-select", "tf"])
    }

    @Test func theUsersWorkersAndJobsStand() {
        let workers = ColconInvocation(arguments: ["build", "--parallel-workers", "1"], makeflags: nil, parallelLevel: nil)
        #expect(workers.userWorkers == 1)
        #expect(workers.arguments(launcher: Self.launcher, workers: 4) == ["build", "--parallel-workers", "1", "--cmake-args"] + Self.ours)
        #expect(ColconInvocation(arguments: ["build", "--parallel-workers=3"], makeflags: nil, parallelLevel: nil).userWorkers == 3)
        let jobs = ColconInvocation(arguments: ["build"], makeflags: "-j3", parallelLevel: nil)
        #expect(jobs.userJobs == .count(3) && jobs.environment(jobs: 12) == ["MAKEFLAGS": "-j3"])
        #expect(ColconInvocation(arguments: ["build"], makeflags: nil, parallelLevel: "5").userJobs == .count(5))
    }

    @Test func eachPackageGetsTheChosenCountAndNoLoadLimit() {
        let inherited = ColconInvocation(arguments: ["build"], makeflags: "-l2 -k", parallelLevel: nil)
        #expect(inherited.environment(jobs: 12) == ["MAKEFLAGS": "-j12 -k", "CMAKE_BUILD_PARALLEL_LEVEL": "12"])
        #expect(ColconInvocation(arguments: ["build"], makeflags: nil, parallelLevel: nil).environment(jobs: 8)
                == ["MAKEFLAGS": "-j8", "CMAKE_BUILD_PARALLEL_LEVEL": "8"])
        #expect(!ColconInvocation(arguments: ["test"], makeflags: nil, parallelLevel: nil).isBuild)
    }
}

@Suite struct CatkinArgumentTests {
    @Test func catkinBuildGetsJobsALoadLimitOfTheSameAndPackages() {
        let plain = CatkinBuildInvocation(arguments: ["build", "tf"])
        #expect(plain.arguments(jobs: 12, packages: 2) == ["build", "-j", "12", "-l", "12", "-p", "2", "tf"])
        let own = CatkinBuildInvocation(arguments: ["build", "-j4", "-p", "1"])
        #expect(own.userJobs == .count(4) && own.userPackages == 1)
        #expect(own.arguments(jobs: 12, packages: 2) == ["build", "-j4", "-p", "1"])
        let load = CatkinBuildInvocation(arguments: ["build", "--jobs", "6", "-l", "3"])
        #expect(load.userJobs == .count(6) && load.userLoadLimit && load.arguments(jobs: 12, packages: 2) == ["build", "-p", "2", "--jobs", "6", "-l", "3"])
        // A -j inside --cmake-args is CMake's business; inside --make-args it is the user's make count.
        let cmake = CatkinBuildInvocation(arguments: ["build", "--cmake-args", "-DX=-j9", "-p", "3"])
        #expect(cmake.userJobs == nil && cmake.userPackages == 3)
        #expect(CatkinBuildInvocation(arguments: ["build", "--make-args", "-j5", "--no-deps"]).userJobs == .count(5))
    }

    @Test func catkinMake() {
        #expect(CatkinMakeInvocation.arguments(["--cmake-args", "-DCMAKE_BUILD_TYPE=Release"], makeflags: nil, jobs: 8)
                == ["-j8", "-l8", "--cmake-args", "-DCMAKE_BUILD_TYPE=Release"])
        #expect(CatkinMakeInvocation.arguments(["-j2", "install"], makeflags: nil, jobs: 8) == ["-j2", "install"])
        #expect(CatkinMakeInvocation.arguments(["install"], makeflags: "-j3", jobs: 8) == ["install"])
        #expect(CatkinMakeInvocation.userJobs(["--cmake-args", "-j7"], makeflags: nil) == nil)
        #expect(launcherEnvironment("/x/swlaunch") == ["CMAKE_C_COMPILER_LAUNCHER": "/x/swlaunch", "CMAKE_CXX_COMPILER_LAUNCHER": "/x/swlaunch"])
    }
}
