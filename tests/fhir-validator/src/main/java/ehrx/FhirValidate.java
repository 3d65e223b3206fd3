package ehrx;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import ca.uhn.fhir.validation.ValidationResult;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.UnknownCodeSystemWarningValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;

/**
 * Validates FHIR R4 JSON files with the HAPI FHIR instance validator (the HL7 reference
 * validator's engine), all in one JVM: loading R4 takes seconds, each file after that far less.
 *
 * <p>Usage: {@code java -cp 'DIR/lib/*' ehrx.FhirValidate FILE...}. Prints JSON lines on
 * stdout, in this order:
 *
 * <pre>
 * {"ready":true,"hapi":"8.8.1","startup_millis":N}
 * {"file":F,"severity":"error","location":L,"line":N,"col":N,"message":M,"id":I}   one per issue
 * {"file":F,"done":true,"bytes":N,"millis":N,"fatal":N,"error":N,"warning":N,"information":N}
 * </pre>
 *
 * <p>severity is one of fatal, error, warning, information. location is HAPI's FHIRPath of the
 * element as it prints it (e.g. {@code Bundle.entry[1].resource/*Condition/c1*\/.subject});
 * line and col are where the element is in the file, 0 when unknown; id is HAPI's message id.
 * A file that cannot be read or validated at all gets one fatal issue at location "(file)".
 * Exit status: 0 when every file was validated (whatever it contains), 2 on a usage error.
 *
 * <p>Offline, no terminology server. The chain: R4 core profiles, snapshot generation, the
 * in-memory terminology service (code systems and value sets that ship with R4: the
 * FHIR-defined ones, so required bindings such as status codes are checked), the common code
 * systems (languages, currencies, units, countries), and last a support that answers "unknown
 * code system" with a warning: a SNOMED CT, LOINC, RxNorm or CVX code, whose code systems are
 * not shipped, gives a warning and not an error. Terminology checks stay on. Extensions
 * whose definitions are not in R4 core (US Core's race and ethnicity, Synthea's own) are
 * allowed (setAnyExtensionsAllowed).
 */
public final class FhirValidate {
    private static final Pattern LINE_COL = Pattern.compile("line (\\d+) column (\\d+)");

    private FhirValidate() {}

    public static void main(String[] args) throws IOException {
        if (args.length == 0 || args[0].equals("-h") || args[0].equals("--help")) {
            System.err.println("usage: java -cp 'DIR/lib/*' ehrx.FhirValidate FILE...");
            System.exit(args.length == 0 ? 2 : 0);
        }
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        long t0 = System.nanoTime();
        FhirValidator validator = newValidator();
        out.println("{\"ready\":true,\"hapi\":" + str(hapiVersion()) + ",\"startup_millis\":"
                + (System.nanoTime() - t0) / 1_000_000 + "}");
        out.flush();
        for (String arg : args) {
            validateFile(validator, Path.of(arg), arg, out);
            out.flush();
        }
    }

    static FhirValidator newValidator() {
        FhirContext ctx = FhirContext.forR4Cached();
        UnknownCodeSystemWarningValidationSupport unknownCodeSystems =
                new UnknownCodeSystemWarningValidationSupport(ctx);
        unknownCodeSystems.setNonExistentCodeSystemSeverity(
                ca.uhn.fhir.context.support.IValidationSupport.IssueSeverity.WARNING);
        ValidationSupportChain chain = new ValidationSupportChain(
                new DefaultProfileValidationSupport(ctx),
                new SnapshotGeneratingValidationSupport(ctx),
                new InMemoryTerminologyServerValidationSupport(ctx),
                new CommonCodeSystemsTerminologyService(ctx),
                unknownCodeSystems);
        FhirInstanceValidator module = new FhirInstanceValidator(chain);
        module.setAnyExtensionsAllowed(true);
        module.setNoTerminologyChecks(false);
        module.setValidatorPolicyAdvisor(new CheckReferencesExist());
        module.setValidatorResourceFetcher(new NothingOutsideTheBundle());
        FhirValidator validator = ctx.newValidator();
        validator.registerValidatorModule(module);
        return validator;
    }

    static void validateFile(FhirValidator validator, Path path, String name, PrintStream out) {
        long t0 = System.nanoTime();
        long[] counts = new long[4];
        long bytes = -1;
        try {
            byte[] raw = Files.readAllBytes(path);
            bytes = raw.length;
            ValidationResult result = validator.validateWithResult(new String(raw, StandardCharsets.UTF_8));
            for (SingleValidationMessage m : result.getMessages()) {
                String sev = severity(m.getSeverity());
                counts[index(sev)]++;
                out.println("{\"file\":" + str(name) + ",\"severity\":" + str(sev)
                        + ",\"location\":" + str(m.getLocationString())
                        + ",\"line\":" + orZero(m.getLocationLine())
                        + ",\"col\":" + orZero(m.getLocationCol())
                        + ",\"message\":" + str(m.getMessage())
                        + ",\"id\":" + str(m.getMessageId()) + "}");
            }
        } catch (Exception | StackOverflowError e) {
            counts[0]++;
            // A file that does not parse (malformed JSON): the parser names the line and column.
            Matcher at = LINE_COL.matcher(String.valueOf(e.getMessage()));
            boolean found = at.find();
            out.println("{\"file\":" + str(name) + ",\"severity\":\"fatal\",\"location\":\"(file)\""
                    + ",\"line\":" + (found ? at.group(1) : "0") + ",\"col\":" + (found ? at.group(2) : "0")
                    + ",\"message\":" + str(e.getClass().getSimpleName() + ": " + e.getMessage())
                    + ",\"id\":\"harness\"}");
        }
        out.println("{\"file\":" + str(name) + ",\"done\":true,\"bytes\":" + bytes
                + ",\"millis\":" + (System.nanoTime() - t0) / 1_000_000
                + ",\"fatal\":" + counts[0] + ",\"error\":" + counts[1]
                + ",\"warning\":" + counts[2] + ",\"information\":" + counts[3] + "}");
    }

    static String severity(ResultSeverityEnum s) {
        if (s == null) {
            return "error";
        }
        switch (s) {
            case FATAL: return "fatal";
            case ERROR: return "error";
            case WARNING: return "warning";
            default: return "information";
        }
    }

    static int index(String sev) {
        switch (sev) {
            case "fatal": return 0;
            case "error": return 1;
            case "warning": return 2;
            default: return 3;
        }
    }

    static String hapiVersion() {
        String v = ca.uhn.fhir.util.VersionUtil.getVersion();
        return v == null ? "unknown" : v;
    }

    static int orZero(Integer i) {
        return i == null ? 0 : i;
    }

    /** A JSON string literal (RFC 8259 escaping); null becomes JSON null. */
    static String str(String s) {
        if (s == null) {
            return "null";
        }
        StringBuilder b = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
            }
        }
        return b.append('"').toString();
    }
}
