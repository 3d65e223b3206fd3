package ehrx;

import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.hl7.fhir.r5.elementmodel.Element;
import org.hl7.fhir.r5.model.CanonicalResource;
import org.hl7.fhir.r5.model.CanonicalType;
import org.hl7.fhir.r5.utils.validation.IResourceValidator;
import org.hl7.fhir.r5.utils.validation.IValidatorResourceFetcher;

/**
 * The resource fetcher of an offline validation of a self-contained history: no resource
 * exists outside the Bundle being validated, so fetching any reference finds nothing (and the
 * validator reports the reference as unresolvable). Canonical URLs (profiles, code systems,
 * value sets) are not resources of the history: they are left to the validation support chain,
 * and a canonical URL the chain does not know is not turned into an error here.
 */
final class NothingOutsideTheBundle implements IValidatorResourceFetcher {
    @Override
    public Element fetch(IResourceValidator validator, Object appContext, String url) {
        return null;
    }

    @Override
    public boolean resolveURL(IResourceValidator validator, Object appContext, String path, String url,
            String type, boolean canonical, List<CanonicalType> targets) {
        return true;
    }

    @Override
    public byte[] fetchRaw(IResourceValidator validator, String url) {
        return null;
    }

    @Override
    public IValidatorResourceFetcher setLocale(Locale locale) {
        return this;
    }

    @Override
    public CanonicalResource fetchCanonicalResource(IResourceValidator validator, Object appContext, String url) {
        return null;
    }

    @Override
    public boolean fetchesCanonicalResource(IResourceValidator validator, String url) {
        return false;
    }

    @Override
    public Set<ResourceVersionInformation> fetchCanonicalResourceVersions(
            IResourceValidator validator, Object appContext, String url) {
        return Set.of();
    }
}
