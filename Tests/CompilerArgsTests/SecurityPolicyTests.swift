import Testing
@testable import CompilerArgs

/// gcc's long spellings are classified like the short forms they mean.
@Suite struct LongSpellingTests {
    @Test(arguments: [
        (["--output=x.o"], "x.o"), (["--output", "x.o"], "x.o"), (["-o", "y.o"], "y.o"),
    ])
    func outputSpellingsNameTheObject(_ output: [String], _ object: String) {
        let compile = distributable(["-c", "a.c"] + output)
        #expect(compile?.object == object)
    }

    @Test(arguments: [
        (["--specs=my.specs"], "specs-file"), (["--specs", "my.specs"], "specs-file"), (["-specs=my.specs"], "specs-file"),
        (["--prefix=/opt/evil/"], "compiler-prefix"), (["--prefix", "/opt/evil/"], "compiler-prefix"), (["-B/opt/evil/"], "compiler-prefix"),
        (["--plugin=/tmp/p.so"], "plugin"), (["-fplugin=/tmp/p.so"], "plugin"), (["-iplugindir=/tmp"], "plugin"),
        (["--config=/tmp/x.cfg"], "config-file"), (["--config", "/tmp/x.cfg"], "config-file"),
        (["--preprocess"], "preprocess-only"), (["--assemble"], "assembly-output"), (["--save-temps"], "save-temps"),
        (["--dependencies"], "dependencies-only"), (["--user-dependencies"], "dependencies-only"),
        (["-output-pch=x.gch"], "pch-output"), (["--output-pch=x.gch"], "pch-output"), (["--coverage"], "coverage"),
        (["-wrapper", "gdb,--args"], "wrapper"),
    ])
    func longFormsThatMustRunLocally(_ extra: [String], _ reason: String) {
        #expect(localReason(["-c", "a.c", "-o", "a.o"] + extra) == reason, "\(extra)")
    }

    @Test func longFormsOfHarmlessOptionsStayDistributable() {
        let compile = distributable(["--compile", "a.c", "--output=b.o", "--include-directory=inc", "--define-macro=X=1",
                                     "--write-dependencies", "--sysroot", "/sr", "--param=max-inline-insns-single=10"])
        #expect(compile?.object == "b.o")
        #expect(compile?.dependencyFile == "b.d")
        #expect(compile?.includeDirectories == ["inc", "/sr"])
        #expect(compile?.scanArguments.contains("-DX=1") == true)
    }
}

@Suite struct HelperPolicyTests {
    let environment: Set<String> = ["/usr/lib/gcc/x86_64-linux-gnu/12", "/usr/lib/gcc/x86_64-linux-gnu/12/plugin/ok.so", "/usr/share/my.specs"]
    func refusal(_ arguments: [String]) -> String? {
        HelperPolicy.refusal(of: ["-c", "a.c", "-o", "a.o"] + arguments, inEnvironment: { environment.contains($0) })
    }

    @Test(arguments: [
        ["-fplugin=/work/job/evil.so"], ["--plugin=/work/evil.so"], ["-B/work/job/"], ["-B", "/work/job/"], ["--prefix=/work/job/"],
        ["--prefix", "/work/job"], ["-specs=/work/evil.specs"], ["--specs=/work/evil.specs"], ["--specs", "/work/evil.specs"],
        ["-wrapper", "/bin/sh,-c,id"], ["@/work/args.rsp"], ["-Xclang", "-load", "-Xclang", "/work/evil.so"],
        ["-Xclang", "-fpass-plugin=/work/evil.so"], ["-Wp,-fplugin=/work/evil.so"], ["-Xpreprocessor", "-fplugin=/work/evil.so"],
        ["-fuse-ld=/work/ld"], ["--ld-path=/work/ld"], ["-iplugindir=/work"], ["--config=/work/x.cfg"],
        ["-fplugin=/usr/lib/gcc/x86_64-linux-gnu/12/plugin/../../../../../../work/evil.so"], ["-fplugin=evil"],
    ])
    func programsFromOutsideTheEnvironmentAreRefused(_ arguments: [String]) {
        #expect(refusal(arguments) != nil, "\(arguments)")
    }

    @Test(arguments: [
        [], ["-O2", "-g", "-Iinclude", "-DX=1", "-MD", "-MF", "a.d"], ["-B/usr/lib/gcc/x86_64-linux-gnu/12/"],
        ["-fplugin=/usr/lib/gcc/x86_64-linux-gnu/12/plugin/ok.so"], ["-specs=/usr/share/my.specs"], ["-fuse-ld=gold"],
        ["-Xclang", "-fcolor-diagnostics"],
    ])
    func ordinaryCompilesAndEnvironmentPathsPass(_ arguments: [String]) {
        #expect(refusal(arguments) == nil, "\(arguments)")
    }

    @Test func onlyAllowedVariablesReachTheCompiler() {
        let kept = HelperPolicy.environment(["LANG=C.UTF-8", "LD_PRELOAD=/work/evil.so", "GCC_EXEC_PREFIX=/work/", "COMPILER_PATH=/w",
                                             "LD_LIBRARY_PATH=/w", "SOURCE_DATE_EPOCH=1", "PATH=/work", "noequals"])
        #expect(kept.map(\.name) == ["LANG", "SOURCE_DATE_EPOCH"])
        #expect(kept.map(\.value) == ["C.UTF-8", "1"])
    }
}
