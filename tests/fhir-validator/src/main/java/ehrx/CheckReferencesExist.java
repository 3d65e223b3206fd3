package ehrx;

import org.hl7.fhir.common.hapi.validation.validator.FhirDefaultPolicyAdvisor;
import org.hl7.fhir.r5.utils.validation.IResourceValidator;
import org.hl7.fhir.r5.utils.validation.IValidationPolicyAdvisor;
import org.hl7.fhir.r5.utils.validation.constants.ReferenceValidationPolicy;

/**
 * HAPI's default policy, except that every reference must resolve (CHECK_EXISTS), as the HL7
 * validator's command line does with -check-references. With the default (IGNORE), a reference
 * to nothing in a collection Bundle is at most a warning. Together with {@link
 * NothingOutsideTheBundle} a reference that resolves neither inside the Bundle nor to a
 * contained resource is an error, Reference_REF_CantResolve, at the reference's location.
 */
final class CheckReferencesExist extends FhirDefaultPolicyAdvisor {
    @Override
    public ReferenceValidationPolicy policyForReference(
            IResourceValidator validator,
            Object appContext,
            String path,
            String url,
            IValidationPolicyAdvisor.ReferenceDestinationType destinationType) {
        return ReferenceValidationPolicy.CHECK_EXISTS;
    }
}
